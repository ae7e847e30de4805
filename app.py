"""ULMFiT Studio: entry point. `streamlit run app.py` serves every page; this file only sets up navigation."""
import os
from pathlib import Path

# Before any page loads torch (and OpenMP): threads waiting for work sleep instead of spinning. With the default,
# a page's prediction on a machine busy with a training run took 5-24 s where it takes 2-3 s (a 4,500-word review x 3,
# bundled model, measured beside this session's background work), the idle threads spinning on the busy cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

# The tab icon, a mortarboard, as an SVG: Streamlit inlines it as a data: URL. A ":material/school:" page_icon made the
# browser fetch the icon from fonts.gstatic.com on every page load, from an app meant to work offline.
ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="#31333f"><path d="M12 3 1 8.5 12 14 23 8.5z"/>'
        '<path d="M5.5 11.2V16c0 1.7 2.9 3 6.5 3s6.5-1.3 6.5-3v-4.8L12 14.5z"/>'
        '<path d="M21 9.5V16" stroke="#31333f" stroke-width="1.4"/></svg>')
st.set_page_config(page_title="ULMFiT Studio", page_icon=ICON, layout="wide")

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
page = st.navigation(pages + aliases)
if page.url_path == "home":
    # `/home` is the hidden alias, so the sidebar has no entry of its own to mark as the current page. Mark Home (the
    # first entry) as Streamlit marks the current one (its light theme's colour, measured in chromium by
    # tests/browser/test_fresh_machine.py); a redirect to `/` instead would trap the Back button (above).
    st.markdown('<style>[data-testid="stSidebarNavItems"] li:first-child [data-testid="stSidebarNavLink"] '
                '{background-color: rgba(169, 169, 162, 0.25);} [data-testid="stSidebarNavItems"] li:first-child '
                '[data-testid="stSidebarNavLink"] span {font-weight: 600; color: rgb(49, 51, 63);}</style>',
                unsafe_allow_html=True)
page.run()
