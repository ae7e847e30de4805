"""ULMFiT Studio: entry point. `streamlit run app.py` serves every page; this file only sets up navigation."""
from pathlib import Path

import streamlit as st

st.set_page_config(page_title="ULMFiT Studio", page_icon=":material/school:", layout="wide")

HERE = Path(__file__).parent
# (file, title, icon, url path) in the order of the workflow: data -> tokens -> training -> using the model.
PAGES = [
    ("pages/home.py", "Home", ":material/home:", "home"),
    ("pages/data.py", "Data", ":material/dataset:", "data"),
    ("pages/tokenizers.py", "Tokenizers", ":material/text_fields:", "tokenizers"),
    ("pages/train.py", "Train", ":material/model_training:", "train"),
    ("pages/sentiment.py", "Sentiment", ":material/sentiment_satisfied:", "sentiment"),
    ("pages/generate.py", "Generate", ":material/edit_note:", "generate"),
    ("pages/models.py", "Models", ":material/inventory_2:", "models"),
]

pages, aliases = [], []
for f, t, i, u in PAGES:
    if not (HERE / f).exists():
        continue
    if u == "home":
        # Streamlit serves the default page at `/` only, so `/home` would be "Page not found". The same file once
        # more as a hidden page answers `/home` (no redirect from `/`: that would trap the browser's Back button).
        # Two pages may not share a url_path, so the default one gets a name nobody sees.
        pages.append(st.Page(f, title=t, icon=i, url_path="index", default=True))
        aliases.append(st.Page(f, title=t, icon=i, url_path=u, visibility="hidden"))
    else:
        pages.append(st.Page(f, title=t, icon=i, url_path=u))
st.navigation(pages + aliases).run()
