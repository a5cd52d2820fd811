"""AppTest checks of the Train page (pages/2_Train.py): controls, refusals, saved runs and a
real background training of the ``tiny`` preset. Runs live in tmp folders (conftest ``app_env``)."""
from __future__ import annotations

import time

import torch
from streamlit.testing.v1 import AppTest

torch.set_num_threads(1)


def open_train(app_env) -> AppTest:
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/2_Train.py").run()
    assert not at.exception
    return at


def texts(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def verdicts(at) -> str:
    return "\n".join(h.proto.body for h in at.get("html"))


def test_smoke_without_any_saved_run(app_env):
    at = open_train(app_env)
    assert at.title[0].value.startswith("Train")
    assert any("No saved runs yet" in i.value for i in at.info)
    assert "**cpu-demo** · γ = 0.5 · 2 layers" in texts(at)
    assert not at.error


def test_gamma_depth_and_preset_change_the_config(app_env):
    at = open_train(app_env)
    at.slider(key="train_gamma").set_value(0.8).run()
    at.slider(key="train_depth").set_value(4).run()
    assert "γ = 0.8 · 4 layers" in texts(at)
    at.selectbox(key="train_preset").set_value("tiny").run()
    assert at.slider(key="train_depth").value == 1 and at.number_input(key="train_epochs").value == 2
    assert "**tiny** · γ = 0.8 · 1 layer · d_model 16" in texts(at)
    assert not at.exception and not at.error
    at.switch_page("pages/1_The_puzzle.py").run()
    at.switch_page("pages/2_Train.py").run()
    assert "**tiny** · γ = 0.8 · 1 layer" in texts(at)  # the settings survive a visit elsewhere


def test_a_committed_run_is_shown_before_anything_is_trained(app_env, make_run):
    make_run(app_env.pretrained, "demo_g0.8", inferential=0.97, symmetric=0.01)
    at = open_train(app_env)
    assert at.selectbox(key="train_run").value.endswith("demo_g0.8")
    assert "answers (4,3) like x−10 on 97% of keys: inferential" in verdicts(at)
    assert len(at.get("vega_lite_chart")) == 4  # loss, accuracy, per-pair grid, answer histogram


def test_selecting_a_saved_run_shows_its_verdict(app_env, make_run):
    make_run(app_env.pretrained, "a_inferential", inferential=0.97, symmetric=0.01)
    sym = make_run(app_env.runs, "b_symmetric", inferential=0.0, symmetric=0.98)
    at = open_train(app_env)
    at.selectbox(key="train_run").set_value(str(sym)).run()
    assert not at.exception
    assert "answers (4,3) like x−6 on 98% of keys: symmetric" in verdicts(at)
    assert "inferential" not in verdicts(at).split(":")[-1]


def test_a_corrupt_run_gives_an_error_and_is_kept(app_env, make_run):
    make_run(app_env.pretrained, "good")
    bad = app_env.runs / "broken"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    at = open_train(app_env)
    assert not at.exception
    # a bad folder is not offered; one warning line names it and why, the good run stays usable
    labels = at.selectbox(key="train_run").options  # "source · folder name"
    assert any(o.endswith("good") for o in labels) and not any("broken" in o for o in labels)
    assert any("broken" in w.value and "corrupt" in w.value for w in at.warning)
    assert at.selectbox(key="train_run").value.endswith("good") and not at.error
    assert (bad / "config.json").read_text() == "{not json"  # never deleted or repaired


def test_unusual_runs_render_or_explain(app_env, make_run):
    import json
    two = make_run(app_env.pretrained, "a_appendix_e", inferential=0.8, symmetric=0.05,
                   **{"task.held_out": ((4, 3), (3, 4)), "task.overrides": ()})
    none = make_run(app_env.pretrained, "b_no_held_out", **{"task.held_out": ()})
    odd = make_run(app_env.runs, "c_old_metrics")
    (odd / "metrics.json").write_text(json.dumps({"history": [{"epoch": 0}]}))
    at = open_train(app_env)
    assert at.selectbox(key="train_run").value == str(two)
    assert not at.exception
    assert "answers (4,3) like x−10 on 80% of keys: leaning inferential" in verdicts(at)
    assert "answers (3,4) like x−10 on 80% of keys" in verdicts(at)
    at.selectbox(key="train_run").set_value(str(none)).run()
    assert not at.exception and any("no verdict" in i.value for i in at.info)
    labels = at.selectbox(key="train_run").options  # refused by the loader, one line says why
    assert any("a_appendix_e" in o for o in labels) and not any("c_old_metrics" in o for o in labels)
    assert not at.exception and any("c_old_metrics" in w.value and "incomplete" in w.value for w in at.warning)


def test_impossible_task_disables_training(app_env):
    at = open_train(app_env)
    at.number_input(key="train_op_3").set_value(-30).run()  # 20 - 30 - 8 < 0
    assert not at.exception
    assert any("smallest target" in e.value for e in at.error)
    assert at.button(key="train_start").disabled


def test_too_large_and_paper_jobs_are_refused_before_the_click(app_env):
    at = open_train(app_env)
    assert not at.button(key="train_start").disabled and not at.warning
    at.number_input(key="train_epochs").set_value(1000).run()
    assert not at.exception
    assert at.button(key="train_start").disabled  # said before the click, not after it
    msg = "\n".join(w.value for w in at.warning)
    assert "FLOP" in msg and "python -m core train --preset cpu-demo" in msg and "--epochs 1000" in msg
    from ui.loaders import job_queue
    assert job_queue().counts() == (0, 0)
    if not torch.cuda.is_available():
        at.selectbox(key="train_preset").set_value("paper").run()
        assert at.button(key="train_start").disabled
        assert any("no GPU" in w.value for w in at.warning)


def test_training_runs_in_the_background_and_opens_the_result(app_env):
    at = open_train(app_env)
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.slider(key="train_gamma").set_value(0.7).run()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    end = time.monotonic() + 120
    while not at.success and time.monotonic() < end:
        time.sleep(0.5)
        at.run()  # what the 1 s fragment does in a browser: poll, and rerun the page when done
        assert not at.exception
    assert at.success and "tiny_L1_g0.7_s0" in at.success[0].value
    assert (app_env.runs / "tiny_L1_g0.7_s0" / "weights.safetensors").exists()
    assert at.selectbox(key="train_run").value.endswith("tiny_L1_g0.7_s0")  # the new run is opened
    assert "not fitted" in verdicts(at)  # tiny is too small to learn the task, and says so
    # the job line and the run card show one command, pasteable from the repository root
    commands = [c.value for c in at.code if c.value.startswith("python -m core train")]
    assert all(len(line) <= 60 for c in commands for line in c.splitlines())  # cut between flags only
    commands = [c.replace(" \\\n  ", " ") for c in commands]
    assert len(commands) == 2 and commands[0] == commands[1], commands
    assert "--out runs/tiny_L1_g0.7_s0" in commands[0] and "$" not in commands[0] and str(app_env.runs) not in commands[0]


def test_a_running_job_shows_and_stays_alive_on_other_pages(app_env, monkeypatch):
    monkeypatch.setenv("ANCHOR_MAX_STEPS", "100000")  # 20,000 steps: longer than the public cap allows
    at = open_train(app_env)
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="train_epochs").set_value(5000).run()
    at.button(key="train_start").click().run()
    assert at.button(key="train_cancel")  # the live panel
    at.switch_page("pages/1_The_puzzle.py").run()
    assert not at.exception
    assert any("Training tiny_L1_g0.5_s0_e5000" in p.proto.text for p in at.get("progress"))
    from ui.loaders import job_queue
    q = job_queue()
    (job,) = [j for j in q.touch_owner(at.session_state["_owner"])]
    assert job.active
    q.cancel(job.id)


def test_a_grid_cell_selected_elsewhere_opens_on_the_train_page(app_env, make_run):
    """Phase-diagram runs live one level down (pretrained/<grid>/<run>); selected_run opens one."""
    make_run(app_env.pretrained, "a_first", inferential=0.97, symmetric=0.01)
    cell = make_run(app_env.pretrained / "phase_demo", "L2_g0.5_s0", inferential=0.02, symmetric=0.95)
    at = AppTest.from_file(str(app_env.root / "app.py"), default_timeout=60)
    at.run()
    at.session_state["selected_run"] = str(cell)
    at.switch_page("pages/2_Train.py").run()
    assert at.selectbox(key="train_run").value == str(cell)
    assert "answers (4,3) like x−6 on 95% of keys: symmetric" in verdicts(at)


# -- charts and live panel pieces ------------------------------------------------------------------
def test_answer_histogram_agrees_with_the_verdict_card():
    """Both candidate answers are drawn with the card's shares even when neither is among the
    five most common offsets (here the model mostly answers x−3, x−4, ...)."""
    from core.config import TaskConfig
    from ui import charts

    held = {"inferential": 0.04, "symmetric": 0.03, "other": 0.93,
            "offsets": {"-3": 0.3, "-4": 0.2, "-2": 0.2, "0": 0.13, "-1": 0.1}}
    df = charts.offsets_chart(held["offsets"], "4,3", TaskConfig(), shares_of=held).data
    share = dict(zip(df["answer"], df["share"]))
    assert share["x−10"] == 0.04 and share["x−6"] == 0.03 and share["x−3"] == 0.3
    assert dict(zip(df["answer"], df["kind"]))["x−10"] == "inferential"


def test_epoch_axis_of_a_chart_with_one_point():
    """At the start of a training the only record is epoch 0: the axis still spans the planned
    epochs with whole-number ticks instead of a zero-width axis labelled 0.000000."""
    from core.config import TaskConfig
    from ui import charts

    history = [{"epoch": 0, "seen_test_accuracy": 0.05, "held_out": {}, "train_loss": None}]
    x = charts.accuracy_chart(charts.accuracy_frame(history, TaskConfig()), epochs=30).to_dict()["encoding"]["x"]
    assert x["scale"]["domain"] == [0, 30] and x["axis"]["format"] == "d" and x["axis"]["tickMinStep"] == 1
    x = charts.accuracy_chart(charts.accuracy_frame(history, TaskConfig())).to_dict()["encoding"]["x"]
    assert x["scale"]["domain"] == [0, 1]  # without a plan: at least one epoch wide


def test_live_curves_before_the_loss_has_two_points():
    def script():
        from core.config import TaskConfig
        from ui import run_report

        history = [{"epoch": 0, "seen_test_accuracy": 0.05, "held_out": {}, "train_loss": None}]
        run_report.curves(history, TaskConfig(), [{"epoch": 0.01, "loss": 4.6}], epochs=30)

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 1  # accuracy only; no empty loss chart
    assert any("Training loss" in i.value and "first training steps" in i.value for i in at.info)


def test_queue_caption_is_cheap_and_current(monkeypatch):
    """#15: with many sessions on the Train page the caption's fragment used to redraw the whole
    page whenever the counts changed; it now redraws the caption alone, with the counts of now
    (a finished job's slot is released before the job reads as finished, tests/test_jobs.py)."""
    import streamlit as st

    from ui import job_panel

    class Queue:
        max_jobs, max_flops, max_steps, max_queue, max_job_seconds, now = 1, 1e15, 7110, 8, 900.0, (0, 0)

        def counts(self):
            return self.now

    queue, reruns, captions = Queue(), [], []
    monkeypatch.setattr(job_panel, "job_queue", lambda: queue)
    monkeypatch.setattr(st, "rerun", lambda **kw: reruns.append(kw))
    monkeypatch.setattr(st, "caption", lambda text: captions.append(text))
    job_panel.queue_caption_body()
    queue.now = (1, 3)
    job_panel.queue_caption_body()
    assert reruns == [] and captions[0].startswith("Server queue: 0 training, 0 waiting")
    assert captions[1].startswith("Server queue: 1 training, 3 waiting") and "8 waiting, one per visitor" in captions[1]
    assert job_panel.QUEUE_CAPTION_EVERY_S >= 5 and job_panel.LIVE_CURVES_EVERY_S >= 2


def test_streamlit_config_turns_off_the_garbage_collection_after_every_run():
    """#15: Streamlit's default full GC after every script and fragment run saturated the GIL."""
    import tomllib

    from conftest import ROOT

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
    import streamlit.config
    assert "runner.postScriptGC" in streamlit.config._config_options  # the option exists in this Streamlit


def test_a_second_click_while_a_job_runs_is_refused_with_a_message(app_env, monkeypatch):
    """#11: a double-click on Train queued a second training of the same session. The button is
    disabled once a job is queued; a second click already on its way runs the click callback
    again, before any redraw: the queue refuses it and the page says so next to the job."""
    monkeypatch.setenv("ANCHOR_MAX_STEPS", "100000")
    at = open_train(app_env)
    at.selectbox(key="train_preset").set_value("tiny").run()
    at.number_input(key="train_epochs").set_value(5000).run()
    at.button(key="train_start").click().run()
    assert at.button(key="train_start").disabled  # one training per session

    def script():
        from core.presets import get_preset
        from ui import job_panel

        cfg = get_preset("tiny").replace(**{"train.epochs": 5000, "train.decay_epochs": 5000})
        job_panel._submit_job("train", cfg, "tiny")  # the two clicks' callbacks, before any redraw
        job_panel._submit_job("train", cfg, "tiny")
        job_panel.job_panel("train", cfg, "tiny")

    other = AppTest.from_function(script, default_timeout=60).run()
    assert not other.exception
    assert any("already have a training" in e.value for e in other.error)
    assert other.button(key="train_cancel")  # the session's job is still shown
    from ui.loaders import job_queue
    q = job_queue()
    assert sum(q.counts()) == 2  # one job per session: the first page's and the double-click's first
    for owner in (at.session_state["_owner"], other.session_state["_owner"]):
        (job,) = q.touch_owner(owner)
        q.cancel(job.id)


def test_a_refusal_from_a_reloaded_jobs_module_is_a_message(app_env, monkeypatch):
    """#16: after a file edit Streamlit reloads ui.jobs; the queue (made before) and the page
    (imported after) then hold different JobRefused classes, and the refusal was uncaught."""
    from ui import job_panel, jobs
    monkeypatch.setattr(jobs, "JobRefused", type("JobRefused", (ValueError,), {}))
    monkeypatch.setattr(job_panel, "size_refusal", lambda cfg, preset: None)  # a click that raced the redraw
    at = open_train(app_env)
    at.number_input(key="train_epochs").set_value(1000).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any("FLOP" in e.value for e in at.error)


def test_a_committed_run_shows_its_note(app_env, make_run):
    import json
    make_run(app_env.pretrained, "a_chosen", inferential=0.81, symmetric=0.0)
    (app_env.pretrained / "notes.json").write_text(json.dumps({"a_chosen": "Seed chosen because it leans inferential."}))
    at = open_train(app_env)
    assert any("Seed chosen because it leans inferential." in i.value for i in at.info)


def test_a_saved_run_of_another_setting_says_so():
    """Newcomer: the controls read cpu-demo γ 0.5, 2 layers, while the run opened below was
    cpu-deep (3 layers) — read as the result of the controls. The page names the difference."""
    from core.presets import get_preset
    from ui.run_report import setting_difference
    demo, deep = get_preset("cpu-demo"), get_preset("cpu-deep")
    assert setting_difference(demo, demo.replace(**{"train.device": "cuda"})) == []
    diff = setting_difference(deep, demo)
    assert any(d.startswith("3 layers (above: 2 layers)") for d in diff)
    assert setting_difference(demo.replace(**{"model.gamma": 0.8}), demo) == ["γ 0.8 (above: γ 0.5)"]
    assert setting_difference(demo.replace(**{"train.precision": "bf16"}), demo) == ["bf16 (above: fp32)"]


def test_the_saved_run_box_opens_a_run_of_the_chosen_setting(app_env, make_run):
    """Newcomer: the box opened the first committed run (3 layers) under 2-layer controls. It now
    opens a run of the controls' setting when one is saved, follows the controls until the visitor
    picks a run, and then keeps the visitor's pick."""
    make_run(app_env.pretrained, "a_other", preset="cpu-demo", **{"model.gamma": 0.8})
    same = make_run(app_env.pretrained, "b_same", preset="cpu-demo")
    at = open_train(app_env)
    assert at.selectbox(key="train_run").value.endswith("b_same")
    assert not any("not the setting chosen above" in c.value for c in at.caption)
    at.slider(key="train_gamma").set_value(0.8).run()
    assert at.selectbox(key="train_run").value.endswith("a_other")  # follows the controls
    at.slider(key="train_gamma").set_value(0.6).run()  # no run of this setting: stays, says how it differs
    assert at.selectbox(key="train_run").value.endswith("a_other")
    assert any("γ 0.8 (above: γ 0.6)" in c.value for c in at.caption)
    at.selectbox(key="train_run").set_value(str(same)).run()  # the visitor's pick
    at.slider(key="train_gamma").set_value(0.8).run()
    assert at.selectbox(key="train_run").value.endswith("b_same")
    assert not at.exception and not at.error


def test_the_saved_run_box_opens_the_closest_run_when_none_has_the_chosen_setting(app_env, make_run):
    """Newcomer: ?preset=paper-replica&gamma=0.8&seed=2&epochs=30 opened a 3-layer cpu-deep run
    (the first committed one) because the committed paper-replica runs are bf16 and the controls
    fp32. With no run of the exact setting, the box opens the one differing in the fewest fields."""
    make_run(app_env.pretrained, "a_far", preset="cpu-demo", **{"model.n_layers": 3, "model.gamma": 0.9})
    near = make_run(app_env.pretrained, "b_near", preset="cpu-demo", **{"train.precision": "bf16"})
    at = open_train(app_env)                       # cpu-demo γ 0.5 seed 0 fp32: no exact run
    assert at.selectbox(key="train_run").value == str(near)
    assert not at.exception and not at.error


def test_the_trained_line_names_the_time_device_and_processor():
    from ui.run_report import trained_line
    assert trained_line({"seconds": 17000.0, "device": "cpu",
                         "processor": "Intel(R) Xeon(R) Processor; torch CPU capability AVX512"}) == (
        " · trained 4.7 h on cpu (Intel(R) Xeon(R) Processor; torch CPU capability AVX512)")
    assert trained_line({"seconds": 90, "device": "cuda"}) == " · trained 90 s on cuda"
    assert trained_line({"seconds": 600, "device": "cpu", "processor": ""}) == " · trained 10 min on cpu"
    for bad in ({}, {"seconds": "x"}, {"seconds": float("nan")}, {"seconds": True}):
        assert trained_line(bad) == ""


def test_an_other_verdict_names_its_most_common_answer():
    from core.config import TaskConfig
    from ui.run_report import verdict_text

    held = {"inferential": 0.14, "symmetric": 0.0, "other": 0.86, "offsets": {"-16": 0.86, "-10": 0.14}}
    assert verdict_text(TaskConfig(), "4,3", 1.0, held) == "answers (4,3) on 86% of keys: leaning other (mostly x−16, 86%)"
    held = {"inferential": 0.95, "symmetric": 0.0, "other": 0.05, "offsets": {"-10": 0.95, "-16": 0.05}}
    assert verdict_text(TaskConfig(), "4,3", 1.0, held) == "answers (4,3) like x−10 on 95% of keys: inferential"
