"""Feature space: input attributions side by side, and the UMAP of features before / after / Retrain."""
import numpy as np
import streamlit as st

import engine
from app import charts, pipeline, resources, ui
from app.views._insights import run_and_insights

st.title("Feature space")
run, insights = run_and_insights("features")
names = resources.dataset().classes
space = insights.features
models = list(space.models)
titles = {"original": "original", "unlearned": f"unlearned · {run.get('label')}", "retrained": "Retrain (exact)"}

st.subheader("Where the forget samples go")
st.markdown("UMAP of penultimate features, all panels in one shared frame (so positions compare). Ringed dots "
            "are the forget set. Good unlearning puts them where Retrain puts them — usually among the classes "
            "they resemble, not in their own island.")
coords = space.coordinates
pad = 0.05 * (coords.max((0, 1)) - coords.min((0, 1)))
ranges = [(coords[..., 0].min() - pad[0], coords[..., 0].max() + pad[0]),
          (coords[..., 1].min() - pad[1], coords[..., 1].max() + pad[1])]
extra = pipeline.load_score_distributions(run) or {}
hover = []
for i, (l, f) in enumerate(zip(space.labels, space.in_forget)):
    text = f"{names[l]}{' · forget' if f else ''}"
    for name in models:
        if f"{name}/map/prediction" in extra:
            text += (f"<br>{name}: {names[int(extra[f'{name}/map/prediction'][i])]} "
                     f"{extra[f'{name}/map/confidence'][i]:.0%}")
    hover.append(text)
panels = st.columns(len(models))
selected = []
for k, name in enumerate(models):
    with panels[k]:
        fig = charts.feature_map(coords[k], space.labels, names, space.in_forget, hover=hover, ids=space.sample_ids,
                                 title=titles.get(name, name), ranges=ranges)
        fig.update_layout(showlegend=k == len(models) - 1, height=400)
        event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key=f"umap-{name}")
        points = (event.selection.points if event is not None and event.selection else []) or []
        selected += [int(p["customdata"]) for p in points if p.get("customdata") is not None]

m = st.columns(len(models))
for k, name in enumerate(models):
    m[k].metric(f"Separation · {name}", ui.fmt(space.silhouette[k], 2),
                help="Silhouette of forget vs retained samples in this model's own feature space (cosine): "
                     "high = the forget set sits apart; Retrain's value is the target.")
    m[k].caption(f"distance to nearest kept class {ui.fmt(space.centroid_distance[k], 3)} · "
                 f"forget shift {ui.fmt(space.forget_shift[k], 2)}")


@st.cache_resource(show_spinner=False, max_entries=4)
def run_models(path: str, dataset_name: str, key: str, _spec):      # cached by the spec's key
    """Read-only models for the click panel: original, this run's, Retrain (when it exists)."""
    data = resources.dataset()
    loaded = {"original": resources.original()[0]}
    loaded["unlearned"], _ = engine.load_checkpoint(f"{path}/model.safetensors", device=resources.device())
    ref, _ = pipeline.reference_checkpoint(data.name, _spec)
    if ref is not None:
        loaded["retrained"], _ = engine.load_checkpoint(ref, device=resources.device())
    return loaded


if selected:
    chosen = list(dict.fromkeys(selected))[:8]
    st.markdown(f"**Selected images** ({len(selected)}; first {len(chosen)} shown) and what each model predicts:")
    data = resources.dataset()
    spec = ui.run_spec(run)
    loaded = run_models(run["path"], data.name, spec.key(), spec)
    images = data.train_images[chosen]
    predictions = {n: engine.predict(mdl, images, device=resources.device()) for n, mdl in loaded.items()}
    cols = st.columns(len(chosen))
    for j, i in enumerate(chosen):
        with cols[j]:
            st.image(images[j].numpy().transpose(1, 2, 0)[..., 0], width=84, clamp=True)
            lines = [f"#{i} · **{names[int(data.train_labels[i])]}**"]
            for n, out in predictions.items():
                p = out.probabilities[j]
                lines.append(f"{n[:9]}: {names[int(p.argmax())]} {p.max():.0%}")
            st.caption("  \n".join(lines))
else:
    st.caption("Click or lasso points in any panel to see the images and each model's prediction.")

st.subheader("What the models look at")
att = insights.attributions
method = st.segmented_control("Attribution", list(att.methods), default=att.methods[0], key="attribution",
                              format_func=lambda m: m.replace("_", " ")) or att.methods[0]
k = list(att.methods).index(method)
st.caption("Which pixels push each model towards the image's true class (Integrated Gradients, Grad-CAM or gradient "
           "saliency), one colour scale per image across models; above each map: the model's prediction and its "
           "probability for the true class. After unlearning, a forget image should lose the evidence the original "
           "saw — as Retrain never had it.")
for n in range(len(att.sample_ids)):
    image = att.images[n][..., 0] if att.images.shape[-1] == 1 else att.images[n].mean(-1)
    tiles = [image] + [att.maps[m, k, n] for m in range(len(att.models))]
    heads = [f"#{att.sample_ids[n]} {names[att.labels[n]]}{' (forget)' if att.in_forget[n] else ''}"] + [
        f"{name} → {names[att.predictions[m, n]]} · p(true) {att.target_probability[m, n]:.0%}"
        for m, name in enumerate(att.models)]
    st.plotly_chart(charts.attribution_row(tiles, heads), config={"displayModeBar": False}, key=f"att-{n}")
