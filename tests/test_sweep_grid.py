"""The sweep grid: axes from --over and from a [sweep] table, lockstep keys, the cells."""

from __future__ import annotations

from pathlib import Path

import pytest

from darkmirror.errors import InputError
from darkmirror.spec import load_run_file
from darkmirror.sweep import Axis, SweepSpec, axis_from_option, cells_of, sweep_from_options
from darkmirror.sweep.grid import toml_value


def test_an_axis_from_the_command_line_reads_values_as_set_does() -> None:
    axis = axis_from_option("finetune.learning_rate=1e-4,3e-4")
    assert axis.keys == ["finetune.learning_rate"]
    assert axis.values == [1e-4, 3e-4]
    assert axis.label == "learning_rate" and not axis.is_replicate
    named = axis_from_option("name=a,b")
    assert named.values == ["a", "b"]  # plain text, as --set reads it


def test_keys_joined_by_plus_move_in_lockstep_and_seed_axes_are_replicates() -> None:
    axis = axis_from_option("base.organism.seed+base.organism.world.seed=0,1,2")
    assert axis.keys == ["base.organism.seed", "base.organism.world.seed"]
    assert axis.label == "organism" and axis.is_replicate
    cells = cells_of(SweepSpec(over=[axis]))
    assert [c.id for c in cells] == ["organism-0", "organism-1", "organism-2"]
    assert cells[1].overrides == ("base.organism.seed=1", "base.organism.world.seed=1")
    assert [c.replicate for c in cells] == ["organism-0", "organism-1", "organism-2"]
    assert {c.condition for c in cells} == {""}


def test_the_grid_is_the_cartesian_product_with_the_first_axis_slowest() -> None:
    sweep = SweepSpec(
        over=[
            axis_from_option("base.organism.seed=0,1"),
            axis_from_option("finetune.learning_rate=0.001,0.0003"),
        ]
    )
    cells = cells_of(sweep)
    assert [c.id for c in cells] == [
        "organism-0_learning_rate-0.001",
        "organism-0_learning_rate-0.0003",
        "organism-1_learning_rate-0.001",
        "organism-1_learning_rate-0.0003",
    ]
    assert cells[2].replicate == "organism-1"
    assert cells[2].condition == "learning_rate-0.001"
    assert cells[2].values == {"organism": 1, "learning_rate": 0.001}


def test_a_replicate_flag_overrides_the_seed_rule() -> None:
    assert not Axis(keys=["finetune.seed"], values=[0, 1], replicate=False).is_replicate
    assert Axis(keys=["base.organism.documents"], values=[1, 2], replicate=True).is_replicate


@pytest.mark.parametrize(
    "text, message",
    [
        ("finetune.seed", "must look like KEY=V1,V2"),
        ("finetune.seed=", "at least 1"),
        ("finetune.seed=1,1", "appears twice"),
        ("a..b=1,2", "not a valid key path"),
    ],
)
def test_a_bad_axis_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        axis_from_option(text)


def test_two_axes_may_not_set_the_same_key() -> None:
    with pytest.raises(ValueError, match="more than one axis"):
        SweepSpec(over=[axis_from_option("a.seed=1,2"), axis_from_option("a.seed+b.seed=3,4")])
    # From the command line it is a user error naming the options, not a traceback.
    with pytest.raises(
        InputError, match=r"--over a.seed=1,2 --over a.seed\+b.seed=3,4: .*more than one axis"
    ):
        sweep_from_options(["a.seed=1,2", "a.seed+b.seed=3,4"])


def test_values_become_toml_overrides_whatever_their_type() -> None:
    assert toml_value(True) == "true"
    assert toml_value("x y") == '"x y"'
    assert toml_value([1, 2]) == "[1, 2]"
    assert toml_value({"a": 1, "b": [True]}) == '{"a" = 1, "b" = [true]}'


def test_a_sweep_table_in_a_spec_is_validated_with_its_line(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        'experiment = "emergent_misalignment"\n'
        "[[sweep.over]]\n"
        'keys = ["base.organism.seed", "base.organism.world.seed"]\n'
        "values = [0, 1]\n"
        'name = "organism"\n'
    )
    loaded = load_run_file(good)
    assert loaded.sweep is not None and loaded.sweep.over[0].label == "organism"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'experiment = "emergent_misalignment"\n[[sweep.over]]\nkeys = ["x.seed"]\nvalue = [0, 1]\n'
    )
    with pytest.raises(InputError) as err:
        load_run_file(bad)
    assert "bad.toml" in str(err.value) and "sweep" in str(err.value)


def test_the_shipped_organism_sweep_is_the_default_experiment_on_three_organisms() -> None:
    from darkmirror.spec import builtin_config, load_spec
    from darkmirror.sweep.run import load_sweep

    loaded = load_sweep(builtin_config("sweep_organisms"))
    sweep, cells, specs = loaded.sweep, loaded.cells, loaded.specs
    assert loaded.name == "organism-sweep" and loaded.executor.kind == "local"
    assert [c.id for c in cells] == ["organism-0", "organism-1", "organism-2"]
    assert sweep.over[0].is_replicate
    default = load_spec(None).model_dump()
    for i, cell in enumerate(cells):
        spec = specs[cell.id].model_dump()
        assert spec["base"]["organism"]["seed"] == spec["base"]["organism"]["world"]["seed"] == i
        assert len(spec["finetune"]["seeds"]) >= 2
        spec["base"]["organism"]["seed"] = spec["base"]["organism"]["world"]["seed"] = 0
        assert {**spec, "name": default["name"]} == default
