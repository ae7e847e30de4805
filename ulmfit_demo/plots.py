"""Plotly figures shared by pages (built here so they can be tested without Streamlit)."""
import plotly.graph_objects as go


def length_histogram(n_tokens, seq_len: int | None = None, title: str = "Review length in tokens") -> go.Figure:
    "Histogram of document lengths, with the model's `seq_len` marked: longer texts are read in several windows."
    fig = go.Figure(go.Histogram(x=list(n_tokens), nbinsx=50, marker_color="#4c78a8", name="documents"))
    if seq_len:
        fig.add_vline(x=seq_len, line_dash="dash", line_color="#e45756",
                      annotation_text=f"seq_len = {seq_len}", annotation_position="top right")
    fig.update_layout(title=title, xaxis_title="tokens per document", yaxis_title="documents",
                      height=320, margin=dict(l=10, r=10, t=40, b=10), bargap=0.05, showlegend=False)
    return fig


def reliability_figure(reliability: list[dict], uncalibrated: list[dict] | None = None, ece: float | None = None,
                       ece_uncalibrated: float | None = None, title: str = "Reliability diagram") -> go.Figure:
    """A reliability diagram from stored tables (`judge.report`: rows `{bin_lo, bin_hi, count, confidence,
    accuracy}`): per confidence bin, how often the model was right against how sure it was. On the diagonal a
    model is calibrated; below it, over-confident. Empty bins are left out; a marker's size grows with its count."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                             line=dict(color="#8c959f", dash="dash", width=1), hoverinfo="skip"))
    series = [(uncalibrated, "as trained", ece_uncalibrated, "#e36209"),
              (reliability, "temperature-scaled", ece, "#0969da")]
    for rows, name, e, colour in series:
        rows = [r for r in (rows or []) if r.get("count") and r.get("confidence") is not None
                and r.get("accuracy") is not None]
        if not rows:
            continue
        n = max(r["count"] for r in rows)
        fig.add_trace(go.Scatter(
            x=[r["confidence"] for r in rows], y=[r["accuracy"] for r in rows], mode="lines+markers",
            name=name + (f" (ECE {e:.3f})" if e is not None else ""), line=dict(color=colour, width=1.5),
            marker=dict(size=[6 + 14 * (r["count"] / n) ** 0.5 for r in rows], color=colour),
            customdata=[[r["bin_lo"], r["bin_hi"], r["count"]] for r in rows],
            hovertemplate="confidence %{customdata[0]:.2f}-%{customdata[1]:.2f} (mean %{x:.1%}): right "
                          "%{y:.1%} of %{customdata[2]} texts<extra>" + name + "</extra>"))
    lo = min([0.5] + [r["bin_lo"] for r in (reliability or []) + (uncalibrated or []) if r.get("count")])
    fig.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(title="confidence (mean top-class probability in the bin)", range=[lo, 1.0],
                                 tickformat=".0%"),
                      yaxis=dict(title="accuracy in the bin", range=[0, 1.02], tickformat=".0%"),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0))
    return fig
