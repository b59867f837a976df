"""Run: pick a method, adjust its hyperparameters (a form generated from its config), start, watch it live."""
import streamlit as st

from app import pipeline, resources, settings, state, trace, ui

st.title("Run unlearning")
ui.storage_guard()                 # an unusable run folder: one clear message, no traceback
names = resources.dataset().classes
spec = state.forget_spec()

top = st.columns([3, 2])
with top[0]:
    st.markdown(f"**Forget set:** {ui.spec_summary(spec, names)}")
with top[1]:
    st.markdown(f"**Device:** {resources.device_label()}")
progress = st.container()          # filled at the end, so a run started below shows at once
if spec is None:
    st.warning("Choose what to forget first.")
    st.page_link("views/forget.py", label="Choose what to forget", icon=":material/target:")

methods = pipeline.methods()
order = sorted(methods, key=lambda m: (m != pipeline.default_method(), m == "retrain", methods[m].label))
method = st.selectbox("Method", order, format_func=lambda m: methods[m].label,
                      key="method")
st.caption(methods[method].summary)

fields = pipeline.config_fields(method)
kind = spec.setting if spec is not None else None
defaults = pipeline.default_config(method, kind)
SEED = ui.NumberField(name="seed", type="int", min=0, max=10_000,
                      help="Seeds every random choice: the same seed gives the same run.")

# Reset makes new widgets (a new key generation): deleting the old keys is not enough, the browser keeps showing
# and sending a widget's typed value for as long as its key stays the same.
generation = state.form_generation(method)
tag = f"-r{generation}" if generation else ""
with st.expander("Hyperparameters — tuned defaults" + (" (shrunk: fast mode)" if settings.FAST else "")
                 + "; open to experiment", expanded=False):
    if spec is not None:
        st.caption(pipeline.defaults_note(method, spec).capitalize() + " — chosen on validation data "
                   "(docs/tuning.md).")
    values, out_of_bounds = {}, []
    columns = st.columns(4)
    for k, f in enumerate(fields):
        with columns[k % 4]:
            key = f"cfg-{method}-{kind}{tag}-{f.name}"   # per setting: its defaults differ (engine.setting_defaults)
            label = f.name.replace("_", " ")
            if f.choices:
                choices = list(f.choices)
                values[f.name] = st.selectbox(label, choices, index=choices.index(defaults[f.name]), help=f.help, key=key)
            elif f.type == "bool":
                values[f.name] = st.checkbox(label, value=bool(defaults[f.name]), help=f.help, key=key)
            elif f.type in ("int", "float"):
                # No min/max on the widget: the browser would silently put the previous value back for a number
                # outside them. The value comes here as typed and is checked below, visibly.
                values[f.name], problem = ui.bounded_number(label, f, defaults[f.name], key)
                if problem:
                    out_of_bounds.append(problem)
            else:
                values[f.name] = st.text_input(label, value=str(defaults[f.name]), help=f.help, key=key)
    seed, problem = ui.bounded_number("seed", SEED, 0, f"seed-{method}{tag}")
    if problem:
        out_of_bounds.append(problem)
    st.button("Reset to defaults", key=f"reset-{method}{tag}", on_click=state.reset_form, args=(method,))
start = st.button("Start", type="primary", disabled=spec is None, key="start",
                  help="Queues the run on this device; it starts at once when the device is free.")

with st.expander("Use your own original model (optional)"):
    import engine
    from app import uploads

    st.caption("A `.safetensors`, `.pt` or `.pth` state dict of the shipped model's architecture. It is checked "
               "before use (no pickled code runs; size, shapes and values must fit) and replaces the shipped model "
               "for your runs only while it stays here; the shipped model itself is never changed.")
    upload = st.file_uploader("Weights file", type=["safetensors", "pt", "pth"], key="original-upload")
    if upload is None:
        state.put("original_upload", None)
    else:
        # The file name is the user's text: shown with st.text, never inside markdown (st.error/st.success parse
        # markdown, where a name could become a remote image or a link).
        try:
            path = uploads.accept(upload.name, upload.getvalue(), resources.original()[0].spec,
                                  resources.dataset().name, state.session_id())
        except engine.CheckpointError as error:
            state.put("original_upload", None)
            st.error("Refused: this file is not used. Why:", icon=":material/block:")
            st.text(str(error))
        else:
            state.put("original_upload", str(path))
            st.success("Your runs now start from this model (for your session only):")
            st.text(uploads.describe(path))
            if uploads.warning(path):
                st.warning(uploads.warning(path))

if start and spec is not None and out_of_bounds:
    st.error("Not started: " + "; ".join(out_of_bounds) + ". Change the value (or Reset to defaults).")
elif start and spec is not None:
    try:
        import engine

        # the config is built and validated once, here; the engine runs this very object
        request = pipeline.run_request(method, values, spec, int(seed), original=state.get("original_upload"))
        engine.make_split(resources.dataset(), spec)   # empty / every class: refused before queueing
    except ValueError as error:
        st.error(f"Not started: {error}")
    else:
        from app.jobs import QueueFull

        try:
            started = pipeline.start_run(state.session_id(), request)   # an identical run is joined or served
        except QueueFull as error:
            st.error(str(error), icon=":material/hourglass_top:")
        else:
            trace.mark("start", how=started.how, run=started.run_id, job=started.job_id)
            if started.how == "shared":           # computed already: its results open at once, marked shared
                state.add_shared_run(started.run_id)
                state.set_current_run(started.run_id)
                st.switch_page("views/results.py")      # (the trace's "results" mark: when the server drew it)
            else:
                state.add_job(started.job_id)
                st.toast("Run queued — it starts as soon as the device is free." if started.how == "new" else
                         "This exact run is already on its way: you follow it (shared result), no copy is queued.")

if spec is not None:
    ref, source = resources.reference_metrics(spec)
    st.caption("Retrain reference: " + (f"{source} ✓ (UA {ref['UA']:.1f} · RA {ref['RA']:.1f} · TA {ref['TA']:.1f} · "
                                        f"MIA {ref['MIA']:.1f})" if ref else
                                        "none yet — computed in the background after the run; comparisons fill in."))

with progress:
    if state.current_run() in state.shared_runs() and not ui.active_jobs(state.session_id()):
        st.success("Shared result: this exact run (same model, forget set, method, settings and seed) was already "
                   "computed, so it opened at once — the same numbers your own run would give.",
                   icon=":material/groups:")
        trace.mark("results_link", run=state.current_run())
        st.page_link("views/results.py", label="See the results", icon=":material/speed:")
    elif state.job_ids() or ui.active_jobs(state.session_id()):
        st.subheader("Progress")
        ui.job_panel("run", show_recent=True)
        if state.current_run():
            trace.mark("results_link", run=state.current_run())
            st.page_link("views/results.py", label="See the results", icon=":material/speed:")
        st.caption("The run carries on while you switch pages; Cancel stops it within seconds.")
