# Hugging Face Docker Space for Unlearning Lab (README front matter: sdk: docker, app_port: 8501).
#
# CPU Space (free tier, 2 vCPU): the default below installs CPU-only torch wheels from PyTorch's CPU index
#   (torch==2.14.1 in requirements.txt matches 2.14.1+cpu there; ~800 MB instead of ~5.5 GB of CUDA wheels).
# GPU Space: build with  --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu130
#   (the app then picks CUDA automatically; see engine.training.resolve_device).
FROM python:3.11-slim-bookworm

# Fashion-MNIST (full 60k/10k, Debian package, MIT) for the `fashion-mnist` dataset; curl for the health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends dataset-fashion-mnist curl \
 && rm -rf /var/lib/apt/lists/*

# Spaces run the container as UID 1000.
RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/home/user/.cache/numba \
    OMP_WAIT_POLICY=PASSIVE
WORKDIR /home/user/app

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY --chown=user requirements.txt .
RUN pip install --no-cache-dir --user --extra-index-url "$TORCH_INDEX" -r requirements.txt

COPY --chown=user engine engine
COPY --chown=user app app
COPY --chown=user assets assets
COPY --chown=user scripts scripts
COPY --chown=user docker docker
COPY --chown=user .streamlit .streamlit

# The classroom's prepared runs (scripts/build_classroom.py): every class with WSS-CL and SalUn at their defaults,
# so a lecture's first students get shared results at once. Built here, never committed: ≈ 30 s per run on
# 2 vCPU with bf16 (18 runs; the tour's Trouser runs are shipped), ~1.7 MB each. --build-arg CLASSROOM_CLASSES="" skips it.
ARG CLASSROOM_CLASSES="0 1 2 3 4 5 6 7 8 9"
RUN if [ -n "$CLASSROOM_CLASSES" ]; then python -m scripts.build_classroom --classes $CLASSROOM_CLASSES; fi

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD curl --fail http://localhost:8501/_stcore/health || exit 1
# The entrypoint keeps XSRF and CORS protection on and exception details out of the page (see its header).
ENTRYPOINT ["docker/entrypoint.sh"]
