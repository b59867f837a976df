"""Choose what to forget: whole classes, hand-picked images, a region of the feature map, or a random fraction."""

import numpy as np
import pandas as pd
import streamlit as st

import engine
from app import charts, resources, state, ui

st.title("Choose what to forget")
data = resources.dataset()
names = data.classes
labels = resources.labels()
held_out = set(resources.validation_ids().tolist())

MODES = {"classes": "Whole classes", "samples": "Pick images", "map": "Lasso on the feature map",
         "fraction": "Random fraction"}
current = state.forget_mode()
choice = st.segmented_control("How", list(MODES), format_func=MODES.get, key="forget-how", default=current)
choice = choice or current


SUGGESTED_CLASS = 1      # Trouser: the guided tour's class (app/tour/run), so a first student is served at once


@st.cache_data(show_spinner=False, max_entries=32)
def forget_ids(key: str, _spec: engine.ForgetSpec) -> np.ndarray:     # cached by the spec's key
    return engine.make_split(resources.dataset(), _spec).forget


# ---------------------------------------------------------------------------------------------- classes
if choice == "classes":
    st.caption("Forget every training image of the classes you tick. Exact-unlearning references are "
               "precomputed for single classes, so comparisons appear at once.")
    chosen = set(state.forget_classes()) if current == "classes" else set()
    if not chosen and state.forget_spec() is None:      # a first visit: one class to start with, computed already
        # plain text, not bold: a bold class name would be a second element whose whole text is the class name
        st.info(f"Suggested: {names[SUGGESTED_CLASS]} (the guided tour's class) — with the default settings its "
                "run is already computed, so its results open at once (a shared result). In the hosted image the "
                "other single classes with WSS-CL or SalUn at their defaults are prepared too.",
                icon=":material/lightbulb:")
    rows = [st.columns(5), st.columns(5)]
    picked = []
    for c, name in enumerate(names):
        with rows[c // 5][c % 5]:
            st.image(resources.class_strip(c, 6), width="stretch")
            if st.checkbox(name, value=c in chosen, key=f"class-{c}"):
                picked.append(c)
    if len(picked) >= len(names):
        st.error("Forgetting every class leaves nothing to keep — untick at least one.")
    elif sorted(picked) != state.forget_classes() or (picked and current != "classes"):
        state.set_forget_classes(picked)
        st.rerun()

# ---------------------------------------------------------------------------------------------- images
elif choice == "samples":
    st.caption("Browse the training pool, filter it, tick rows and add them. The original model's prediction "
               "and confidence help you find typical and odd examples.")
    outputs = resources.train_pool_outputs() if resources.original_available() else None
    f1, f2, f3, f4 = st.columns([3, 2, 2, 1])
    classes = f1.multiselect("Classes", range(len(names)), format_func=lambda c: names[c], key="grid-classes")
    which = f2.selectbox("Original model", ["all", "correct", "wrong"], key="grid-which",
                         format_func={"all": "any prediction", "correct": "predicted right",
                                      "wrong": "predicted wrong"}.get)
    order = f3.selectbox("Order", ["id", "confidence ↑", "confidence ↓"], key="grid-order")
    size = 40
    ids = np.array([i for i in range(len(labels)) if i not in held_out])
    if classes:
        ids = ids[np.isin(labels[ids], classes)]
    if outputs is not None:
        right = outputs["predictions"][ids] == labels[ids]
        ids = ids[right] if which == "correct" else ids[~right] if which == "wrong" else ids
        if order != "id":
            ids = ids[np.argsort(outputs["confidence"][ids] * (1 if order == "confidence ↑" else -1), kind="stable")]
    pages = max(1, -(-len(ids) // size))
    page = f4.number_input("Page", 1, pages, 1, key="grid-page") if pages > 1 else 1
    shown = ids[(page - 1) * size: page * size]
    chosen_now = set(state.forget_samples())
    table = pd.DataFrame({
        "image": resources.image_data_urls(tuple(int(i) for i in shown)),
        "id": shown, "class": [names[labels[i]] for i in shown],
        "predicted": [names[outputs["predictions"][i]] for i in shown] if outputs is not None else "",
        "confidence": [float(outputs["confidence"][i]) for i in shown] if outputs is not None else np.nan,
        "chosen": [int(i) in chosen_now for i in shown]})
    st.caption(f"{len(ids):,} images match · page {page} of {pages}")
    event = st.dataframe(table, hide_index=True, on_select="rerun", selection_mode="multi-row", key=f"grid-{page}",
                         row_height=44, height=420, width="stretch",
                         column_config={"image": st.column_config.ImageColumn(" ", width="small"),
                                        "confidence": st.column_config.ProgressColumn("confidence", min_value=0,
                                                                                      max_value=1, format="%.2f")})
    rows = event.selection.rows if event is not None else []
    b1, b2, b3 = st.columns([2, 2, 3])
    if b1.button(f"Add {len(rows)} ticked", disabled=not rows, type="primary"):
        state.add_forget_samples(shown[rows])
        st.rerun()
    if b2.button("Add the whole page"):
        state.add_forget_samples(shown)
        st.rerun()

# ---------------------------------------------------------------------------------------------- map
elif choice == "map":
    st.caption("Each dot is a training image, placed by the original model's features (a fast linear map; the "
               "results page shows the UMAP). Draw a box or lasso around a region, then add it.")
    if not resources.original_available():
        st.error("The trained model is missing, so there is no feature map.")
    else:
        outputs = resources.train_pool_outputs()
        keep = np.array([i for i in range(len(labels)) if i not in held_out])
        hover = [f"{names[labels[i]]} → predicted {names[outputs['predictions'][i]]}" for i in keep]
        chosen_mask = np.isin(keep, state.forget_samples())
        fig = charts.feature_map(outputs["map"][keep], labels[keep], names, chosen_mask, hover=hover, ids=keep,
                                 selectable=True)
        event = st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "lasso"), key="forget-map")
        points = (event.selection.points if event is not None and event.selection else []) or []
        picked = sorted({int(p["customdata"]) for p in points if p.get("customdata") is not None})
        if st.button(f"Add {len(picked)} selected images", disabled=not picked, type="primary"):
            state.add_forget_samples(picked)
            st.rerun()

# ---------------------------------------------------------------------------------------------- fraction
elif choice == "fraction":
    st.caption("Forget a random share of the whole training set — the “random forgetting” setting of the "
               "literature. No precomputed reference: Retrain runs in the background after your run.")
    value = st.slider("Share of the training set", 0.01, 0.5, state.forget_fraction() if current == "fraction"
                      else 0.1, 0.01, format="%.2f", key="fraction")
    if current != "fraction" or abs(value - state.forget_fraction()) > 1e-9:
        state.set_forget_fraction(value)
        st.rerun()

# ---------------------------------------------------------------------------------------------- the chosen set
st.divider()
spec = state.forget_spec()
st.subheader("Your forget set")
if spec is None:
    st.info("Nothing chosen yet.")
else:
    try:
        ids = forget_ids(spec.key(), spec)
    except ValueError as error:
        st.error(str(error))
        ids = np.array([], dtype=np.int64)
    counts = np.bincount(labels[ids], minlength=len(names))
    left, right = st.columns([2, 3])
    with left:
        st.metric(ui.spec_summary(spec, names), f"{len(ids):,} images")
        st.dataframe(pd.DataFrame({"class": names, "images": counts})[counts > 0], hide_index=True, width="stretch")
        if spec.sample_ids:
            remove = st.multiselect("Remove classes from the set", [c for c in range(len(names)) if counts[c]],
                                    format_func=lambda c: names[c], key="remove-classes")
            c1, c2 = st.columns(2)
            if c1.button("Remove", disabled=not remove):
                state.remove_forget_samples(ids[np.isin(labels[ids], remove)])
                st.rerun()
            if c2.button("Clear all"):
                state.clear_forget_samples()
                st.rerun()
    with right:
        preview = ids[:: max(1, len(ids) // 48)][:48]
        st.image(resources.thumbnails(tuple(int(i) for i in preview), 12), width="stretch",
                 caption=f"{len(preview)} of {len(ids):,} images" if len(ids) > len(preview) else None)
    ref, _ = resources.reference_metrics(spec)
    st.caption("Exact unlearning (Retrain) for this set: " + ("precomputed ✓" if ref else
               "not precomputed — it will be computed in the background after your run (about half a minute on a 2-core CPU)."))
    st.page_link("views/run.py", label="Next: run unlearning", icon=":material/play_arrow:")
