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
