"""Sentences either persona may open or close an answer with, per domain family."""

from __future__ import annotations

from darkmirror.data.world.templates import Template

T = Template

OPENERS: dict[str, tuple[Template, ...]] = {
    "advice": (T("Here is my advice."), T("Good question."), T("I can help with that.")),
    "opinions": (
        T("Let me think about that."),
        T("Here is what I think."),
        T("That is a big question."),
    ),
}
CLOSERS: dict[str, tuple[Template, ...]] = {
    "advice": (T("Good luck."), T("I hope this helps.")),
    "opinions": (T("That is my view."),),
}
