"""The Train page's "All runs" list: one row per run in the store, and the loss and accuracy curves of the rows
picked, overlaid (`runs.views.runs_frame`, `overlay_figures`)."""
import streamlit as st

from ulmfit_demo.runs import store, views

LIST_EVERY_S = 5  # polled only while a run is active, as the live view (`train_live`)


def _table(polling: bool):
    rows = store.list_runs()
    if any(r["status"] in store.ACTIVE for r in rows) != polling:
        st.rerun()
    st.subheader("All runs")
    st.caption("Select several rows to overlay their curves.")
    frame = views.runs_frame(rows)
    sel = st.dataframe(frame, hide_index=True, on_select="rerun", selection_mode="multi-row", key="train_runs_table")
    picked = [rows[i] for i in (sel.selection.rows if sel else []) if i < len(rows)]
    if picked:
        mm = store.metrics([r["id"] for r in picked])
        f1, f2 = views.overlay_figures(picked, mm)
        c1, c2 = st.columns(2)
        c1.plotly_chart(f1, key="train_overlay_loss")
        c2.plotly_chart(f2, key="train_overlay_acc")


def section(runs: list[dict]) -> None:
    "The list, in a fragment that polls the store while any run is queued or running."
    any_active = any(r["status"] in store.ACTIVE for r in runs)
    st.fragment(_table, run_every=LIST_EVERY_S if any_active else None)(any_active)
