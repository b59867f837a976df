"""Cached loaders around engine calls. What `st.cache_resource` returns is shared by every session:
never mutate it (runs work on copies inside the engine). Derived arrays go through `st.cache_data`.
"""
from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st

import engine
from app import pipeline, settings


@st.cache_resource(show_spinner="Loading the dataset…")
def dataset():
    return engine.load_dataset(settings.DATASET)


@st.cache_resource(show_spinner=False)
def device():
    return engine.resolve_device(None)


def device_label() -> str:
    return engine.device_name(device())


@st.cache_resource(show_spinner="Loading the trained model…")
def original():
    """(model, sidecar record) of the shipped original model — read-only."""
    return engine.load_original(dataset(), device=device())


def original_available() -> bool:
    try:
        original()
        return True
    except FileNotFoundError:
        return False


@st.cache_data(show_spinner=False)
def original_record() -> dict:
    return dict(original()[1])


@st.cache_data(show_spinner="Running the original model over the training pool…")
def train_pool_outputs() -> dict:
    """Original model on every training-pool image: predictions, confidence, and a 2-D map of features."""
    data = dataset()
    model, _ = original()
    outputs, _ = pipeline.original_outputs(model, data, device())
    probabilities = outputs.probabilities
    return {"predictions": outputs.predictions.astype(np.int64),
            "confidence": probabilities.max(1).astype(np.float32),
            "map": _pca_2d(outputs.features)}


def _pca_2d(features: np.ndarray) -> np.ndarray:
    """A fast linear map for choosing samples (the UMAP of insights is reserved for results)."""
    centred = features - features.mean(0)
    _, _, vt = np.linalg.svd(centred[:: max(1, len(centred) // 3000)], full_matrices=False)
    return (centred @ vt[:2].T).astype(np.float32)


@st.cache_data(show_spinner=False)
def labels() -> np.ndarray:
    return dataset().train_labels.numpy().copy()


@st.cache_data(show_spinner=False)
def validation_ids() -> np.ndarray:
    return engine.validation_indices(dataset(), 0)


# Both return PNG bytes, encoded once: `st.image` of an array re-encodes it on every rerun of every session
# (the Choose page's ten strips: 2.1 ms per rerun, /tmp timing of PIL's encode on this CPU). Registering the
# bytes under Streamlit's process-wide media lock stays per rerun (docs/hardening.md, the classroom profile).
@st.cache_data(show_spinner=False, max_entries=64)
def class_strip(class_index: int, count: int = 8) -> bytes:
    """``count`` training images of one class side by side (PNG of a uint8 H × count·W mosaic)."""
    data = dataset()
    ids = np.flatnonzero(data.train_labels.numpy() == class_index)[:count]
    return png(tile(data.train_images[ids].numpy(), columns=count))


@st.cache_data(show_spinner=False, max_entries=64)
def thumbnails(ids: tuple[int, ...], columns: int = 16) -> bytes:
    return png(tile(dataset().train_images[list(ids)].numpy(), columns=columns))


def png(image: np.ndarray) -> bytes:
    """A uint8 grey (H, W) or colour (H, W, 3) image as PNG bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def tile(images: np.ndarray, columns: int) -> np.ndarray:
    """(N, C, H, W) uint8 → one grey/colour mosaic with a 1-px gap."""
    n, c, h, w = images.shape
    rows = max(1, -(-n // columns))
    canvas = np.full((rows * (h + 1), columns * (w + 1), c), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        canvas[r * (h + 1): r * (h + 1) + h, k * (w + 1): k * (w + 1) + w] = image.transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas


@st.cache_data(show_spinner=False, max_entries=256)
def image_data_urls(ids: tuple[int, ...], scale: int = 2) -> list[str]:
    from PIL import Image

    data = dataset()
    urls = []
    for i in ids:
        array = data.train_images[i].numpy().transpose(1, 2, 0)
        array = array[..., 0] if array.shape[2] == 1 else array
        image = Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        urls.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return urls


def reference_metrics(spec: engine.ForgetSpec) -> tuple[dict | None, str]:
    """Retrain metrics for a forget set (precomputed or computed in the background)."""
    return _reference_metrics(spec.key(), spec)


@st.cache_data(show_spinner=False, ttl=5, max_entries=256)
def _reference_metrics(key: str, _spec: engine.ForgetSpec) -> tuple[dict | None, str]:   # cached by the key
    return pipeline.reference_metrics(settings.DATASET, _spec)
