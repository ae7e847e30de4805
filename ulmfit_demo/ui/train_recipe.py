"""The Train page's "Full recipe" table: a recipe's four runs (forward, backward, baseline, ensemble) in one table,
live while they run, then each model's accuracy side by side (`runs.recipe.status`)."""
import streamlit as st

from ulmfit_demo.runs import recipe, store, views

RECIPE_EVERY_S = 5


def _table(group: str, polling: bool):
    "The recipe's runs in one table; once all have ended, each model's accuracy side by side."
    rs = recipe.status(group)
    if (rs["status"] in store.ACTIVE) != polling:
        st.rerun()
    st.markdown(f"`{group}` on **{rs['dataset']}**, preset {rs['preset']}{' (tiny)' if rs.get('tiny') else ''}: "
                + views.STATUS_MD.get(rs["status"], rs["status"]))
    pct = lambda v: f"{v:.1%}" if v is not None else ""  # noqa: E731
    st.dataframe([{"model": row["model"], "accuracy": pct(row["accuracy"]),
                   "in one pass": pct(row["inference_accuracy"]),
                   "valid texts": row["n_valid"], "time": row["time"], "device": row["device"],
                   "precision": row["precision"], "status": row["status"], "run": row["run"]} for row in rs["table"]],
                 hide_index=True, key=f"train_recipe_table_{group}")
    if rs["status"] in store.ACTIVE:
        st.caption("One run at a time, in this order: forward, backward, baseline, then the ensemble of the first two "
                   "(pick a run below to watch it). Closing the tab stops nothing.")
    else:
        st.caption(recipe.INFERENCE_NOTE)
    for row in rs["table"]:
        if row["error"] and row["status"] != store.SUCCEEDED:
            st.warning(f"{row['model']}: {row['error']}")


def section(group: str, runs: list[dict]) -> None:
    "The table, in a fragment that polls the store while a run of the recipe is queued or running."
    polling = recipe.status(group, runs)["status"] in store.ACTIVE
    st.fragment(_table, run_every=RECIPE_EVERY_S if polling else None)(group, polling)
