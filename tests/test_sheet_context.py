"""Sheet context (``SPEC@sheet=BETA``): a cut figure's stored vector mixed with its sheet's, a key of its own."""

from __future__ import annotations

import numpy as np
import pytest
from _search_helpers import CALLS, AngleEncoder, angle_image, hand_collection

from figsearch.embed.base import VISUAL_ENCODERS
from figsearch.embed.catalog import create_visual, encoder_key
from figsearch.embed.sheet_context import (context_digest, mix, sheet_context_spec, split_sheet_context,
                                           with_sheet_context)
from figsearch.errors import InputError
from figsearch.pipeline.embed import embed_visual, mix_sheet_context, plan_visual
from figsearch.pipeline.index import update_collection
from figsearch.records import Figure, FigureRole
from figsearch.store import Collection


class SheetAngleEncoder(AngleEncoder):
    """``fake-angle`` whose identity records the sheet context, as the backbone encoders' does."""

    name = "fake-angle-sheet"

    @property
    def identity(self) -> dict:
        return with_sheet_context(super().identity, self.sheet_context)


if "fake-angle-sheet" not in VISUAL_ENCODERS:
    VISUAL_ENCODERS.register("fake-angle-sheet", help="test encoder")(SheetAngleEncoder)


def _unit(degrees: float) -> np.ndarray:
    return np.array([np.cos(np.radians(degrees)), np.sin(np.radians(degrees))], np.float32)


def _cut_sheet(root) -> None:
    """hand_collection, with US1-B (angle 30) a sheet cut into two figures (angles 40 and 80)."""
    hand_collection(root)
    with Collection.open(root, write=True) as c:
        images = {key: c.save_png("images", "US1", f"B-{key}", angle_image(angle)) for key, angle in (("fig1", 40), ("fig2", 80))}
        with c.transaction():  # as pipeline.signs.process_figure stores them
            c.signs.set_reading("US1-B", "FIGS. 1, 2", None, FigureRole.SPLIT_SHEET)
            for key, (path, digest) in images.items():
                c.signs.insert_cut_figure(Figure(f"US1-B-{key}", "US1", label=f"FIG. {key[-1]}", role=FigureRole.DRAWING,
                                                 sequence=2, image_path=path, image_sha256=digest, parent_id="US1-B",
                                                 width=16, height=16, box=(0, 0, 16, 16)))


def test_the_spec_mark_is_parsed_wherever_it_stands_and_checked():
    assert split_sheet_context("backbone:m.onnx") == ("backbone:m.onnx", 0.0)
    assert split_sheet_context("backbone:m.onnx@sheet=1") == ("backbone:m.onnx", 1.0)
    assert split_sheet_context("backbone:m.onnx@sheet=0.5@mask=labels") == ("backbone:m.onnx@mask=labels", 0.5)
    assert split_sheet_context("backbone:m.onnx@mask=labels@sheet=2") == ("backbone:m.onnx@mask=labels", 2.0)
    assert sheet_context_spec("backbone:m.onnx@sheet=2", 1) == "backbone:m.onnx@sheet=1"
    assert sheet_context_spec("backbone:m.onnx@sheet=2", 0) == "backbone:m.onnx"
    for bad, why in (("m@sheet=x", "not a number"), ("m@sheet=-1", ">= 0"), ("m@sheet=nan", ">= 0"),
                     ("m@sheet=1@sheet=2", "once")):
        with pytest.raises(InputError, match=why):
            split_sheet_context(bad)


def test_the_key_changes_with_the_weight_and_not_without_one():
    plain = create_visual("fake-angle-sheet")
    assert "sheet_context" not in plain.identity
    assert encoder_key(create_visual("fake-angle-sheet@sheet=0")) == encoder_key(plain)
    one, half = create_visual("fake-angle-sheet@sheet=1"), create_visual("fake-angle-sheet@sheet=0.5")
    assert one.identity["sheet_context"] == 1.0
    assert len({encoder_key(plain), encoder_key(one), encoder_key(half)}) == 3
    # a query image is never mixed: the encoder itself encodes as the plain one does
    images = [angle_image(40), angle_image(80)]
    np.testing.assert_allclose(one.encode(images), plain.encode(images))
    with pytest.raises(InputError, match="cannot take @sheet="):
        create_visual("fake-angle@sheet=1")  # its identity would not record it: the key would not change


def test_mix_is_the_normalised_weighted_sum():
    got = mix(np.stack([_unit(40), _unit(80)]), np.stack([_unit(30), _unit(30)]), 1.0)
    want = np.stack([_unit(40) + _unit(30), _unit(80) + _unit(30)])
    np.testing.assert_allclose(got, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-6)
    assert context_digest("a", "b", 1) != context_digest("a", "b", 0.5) != context_digest("a", "c", 0.5)


def test_cut_figures_are_stored_mixed_with_their_sheet_and_a_rerun_does_nothing(collection_dir):
    _cut_sheet(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        report = update_collection(c, visual_model="fake-angle-sheet@sheet=1", text_model="none")
        visual = report.embedded[0]
        assert visual.embedded == 6 and visual.mixed == 2  # A, C, D, E and the two cut figures; the sheet is not stored
        key = encoder_key(create_visual("fake-angle-sheet@sheet=1"))
        stored = c.vectors.fetch("visual", key, ["US1-A", "US1-B", "US1-B-fig1", "US1-B-fig2"])
        assert "US1-B" not in stored  # a cut sheet is neither stored nor indexed
        np.testing.assert_allclose(stored["US1-A"], _unit(0), atol=1e-6)  # an uncut drawing: its own vector
        for fid, angle in (("US1-B-fig1", 40), ("US1-B-fig2", 80)):
            want = _unit(angle) + _unit(30)
            np.testing.assert_allclose(stored[fid], want / np.linalg.norm(want), atol=1e-6)
        sheet_sha = c.figure("US1-B").image_sha256
        assert c.vectors.inputs("visual", key)["US1-B-fig1"] == context_digest(
            c.figure("US1-B-fig1").image_sha256, sheet_sha, 1.0)
        assert c.get_setting("visual_encoder")["identity"]["sheet_context"] == 1.0
        calls = CALLS["visual"]
        again = update_collection(c, text_model="none").embedded[0]  # the stored spec, with its sheet context
        assert (again.embedded, again.mixed, again.unchanged) == (0, 0, 6) and CALLS["visual"] == calls


def test_switching_to_a_sheet_context_encodes_only_the_sheets(collection_dir):
    _cut_sheet(collection_dir)
    with Collection.open(collection_dir, write=True) as c:
        update_collection(c, visual_model="fake-angle-sheet", text_model="none")
        calls = CALLS["visual"]
        report = update_collection(c, visual_model="fake-angle-sheet@sheet=1", text_model="none").embedded[0]
        assert (report.embedded, report.unchanged, report.mixed) == (0, 6, 2)
        assert CALLS["visual"] == calls + 1  # the one cut sheet, nothing else
        assert report.encoder != encoder_key(create_visual("fake-angle-sheet"))


def test_plain_vectors_stored_by_another_path_are_mixed_afterwards(collection_dir):
    # the overlapped build's stream and a Ray build's workers store a cut figure's plain vector under the
    # encoder's key and its image digest; the mixing step then replaces it, and only it
    _cut_sheet(collection_dir)
    encoder = create_visual("fake-angle-sheet@sheet=0.5")
    key = encoder_key(encoder)
    with Collection.open(collection_dir, write=True) as c:
        embed_visual(c, encoder)
        assert plan_visual(c, encoder)[0] == []  # plain vectors of cut figures count as up to date ...
        assert mix_sheet_context(c, encoder) == 2  # ... until they are mixed
        assert mix_sheet_context(c, encoder) == 0
        assert plan_visual(c, encoder)[0] == []
        want = _unit(80) + 0.5 * _unit(30)
        np.testing.assert_allclose(c.vectors.fetch("visual", key, ["US1-B-fig2"])["US1-B-fig2"],
                                   want / np.linalg.norm(want), atol=1e-6)
        # a stand-in that only records the identity (a Ray build's driver) loads an encoder to encode the sheet
        c.vectors.save("visual", key, [("US1-B-fig1", _unit(40), c.figure("US1-B-fig1").image_sha256)])

        class StandIn:
            identity = encoder.identity

        assert mix_sheet_context(c, StandIn(), lambda: create_visual("fake-angle-sheet@sheet=0.5")) == 1


def test_after_an_overlapped_build_many_sheets_are_encoded_by_a_fresh_encoder(collection_dir):
    # the stream's encoder runs on one thread; past ``fresh_encoder_above`` sheets the step loads one with the
    # stage's threads, and below it keeps the one it was given (loading costs more than a few sheets)
    _cut_sheet(collection_dir)
    given = create_visual("fake-angle-sheet@sheet=0.5")
    loads = []

    def load():
        loads.append(1)
        return create_visual("fake-angle-sheet@sheet=0.5")

    with Collection.open(collection_dir, write=True) as c:
        embed_visual(c, given)
        assert mix_sheet_context(c, given, load, fresh_encoder_above=1) == 2  # one sheet: the given encoder
        assert loads == []
        key = encoder_key(given)
        c.vectors.save("visual", key, [(f"US1-B-{k}", _unit(a), c.figure(f"US1-B-{k}").image_sha256)
                                       for k, a in (("fig1", 40), ("fig2", 80))])
        assert mix_sheet_context(c, given, load, fresh_encoder_above=0) == 2  # more sheets than 0: a fresh one
        assert loads == [1]
