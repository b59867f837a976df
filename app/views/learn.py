"""Start page: what unlearning is, what WSS-CL does, the data and the model — first, and fast."""
import streamlit as st

from app import charts, settings

st.title("Unlearning Lab")
st.markdown(
    "**Machine unlearning** removes the influence of chosen training data from a trained model — as if the "
    "model had never seen it. The gold standard, **Retrain**, trains a new model from scratch without that "
    "data: exact, but slow. Unlearning methods try to get the same model in a fraction of the time. "
    "Here you pick what to forget, run a method live, and check against Retrain whether it worked.")

st.subheader("WSS-CL in two stages")
st.markdown(
    "**W**eight-**S**aliency **S**oft-guided **C**ontrastive **L**earning first measures which weights carry the "
    "forget set (*weight saliency*), then unlearns while letting mainly those weights move: "
    "**stage 1** pushes the forget samples' predictions to “no idea” (uniform; when whole classes are forgotten, "
    "uniform over the other classes); **stage 2** pulls each forget sample towards its own augmented view and away "
    "from retained data — for several classes at once it also keeps up stage 1's push — then repairs accuracy on the "
    "retained data. When whole classes are forgotten, a closing step of ours (**stage 3**, not in the paper) pushes "
    "down only those classes' output rows, as training without them would have: the forgotten images end up as "
    "unconfident as under Retrain, and no image the model gives a retained class changes its answer.")
st.plotly_chart(charts.two_stage_diagram(), config={"displayModeBar": False}, key="diagram")
st.caption("What the measurements on this model show (docs/benchmarks-ablation.md; one class, several classes, "
           "random and hand-picked images, 3–6 runs each): the repair at the end of stage 2 is what brings WSS-CL "
           "close to Retrain — without it the model is broken. On random images stage 1 is what brings forgetting "
           "up to Retrain's. For one class the defaults (tuned to run in a few seconds) keep stages 1–2 gentle and "
           "stage 3 does the forgetting: without it most of the class is still recognised. Switching off the saliency "
           "guidance, or the contrastive loss, changed the Avg. Gap by less than the run-to-run noise in every "
           "setting — and on hand-picked images dropping the contrastive loss did slightly better.")

st.subheader("The data and the model")
from app import resources  # noqa: E402 — the text above is on screen before torch-backed work starts

data = resources.dataset()
cols = st.columns(4)
cols[0].metric("Dataset", data.name, help=data.source)
cols[1].metric("Training pool", f"{len(data.train_labels):,}", help=f"incl. {data.validation_size:,} held out for tuning")
cols[2].metric("Test images", f"{len(data.test_labels):,}")
if resources.original_available():
    record = resources.original_record()
    cols[3].metric("Original model · test accuracy", f"{record['metrics'].get('test_acc', float('nan')):.1f} %",
                   help=f"{record['model']['architecture']}, trained {record['recipe']['epochs']} epochs on "
                        f"{record['train_size']:,} images in {record['seconds']:.0f} s on {record['device']}")
else:
    cols[3].metric("Original model", "missing")
    st.error("The trained model is not there yet (assets/checkpoints). Build it with "
             "`python -m scripts.build_checkpoints --only original`.")
st.caption(f"Device for runs: **{resources.device_label()}**")

names = data.classes
rows = [st.columns(5), st.columns(5)]
for c, name in enumerate(names):
    with rows[c // 5][c % 5]:
        st.image(resources.class_strip(c, 5), caption=name, width="stretch")

with st.expander("How a run is judged (the four numbers)"):
    st.markdown(
        "- **UA** — unlearning accuracy = 100 − accuracy on the forget set. *Higher = more forgotten.* "
        "(Some tools call the forget-set accuracy itself “UA”; here it is 100 minus it.)\n"
        "- **RA** — accuracy on the retained training data. *Higher = utility kept.*\n"
        "- **TA** — accuracy on unseen test images (of the kept classes, when whole classes are forgotten).\n"
        "- **MIA-Efficacy** — share of forget samples a membership-inference attack labels “not seen in "
        "training”. *Higher = more forgotten.*\n"
        "- **Avg. Gap** — mean distance to Retrain over those four. *Lower = closer to exact unlearning.* "
        "Forgetting “more” than Retrain is not better: Retrain is the target. Two Retrains with different seeds "
        "are not at gap 0 either: the **noise floor** (shown beside every gap) is how far apart they are.\n"
        "- **Per image** — averages can match Retrain while single images do not: the *Per-example audit* asks, "
        "image by image, whether an attacker with models of its own can still tell (LiRA; the NeurIPS 2023 "
        "challenge's forgetting quality).")

st.divider()
go = st.columns(3)
go[0].page_link("views/forget.py", label="Start: choose what to forget", icon=":material/target:")
go[1].page_link("views/teaching.py", label="Or take the guided tour", icon=":material/school:")
go[2].page_link("views/compare.py", label="Earlier runs", icon=":material/table_chart:")
if settings.FAST:
    st.caption("Fast mode is on: method defaults are shrunk to seconds.")
