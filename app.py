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

nav = st.navigation([st.Page(f, title=t, icon=i, url_path=u, default=(u == "home"))
                     for f, t, i, u in PAGES if (HERE / f).exists()])
nav.run()
