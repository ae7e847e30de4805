"""`models list|export|import|rename|delete|ensemble`, `predict` and `generate`: saved models from the command line.
`--model` takes an id, a unique model name, or `latest` (the newest model of the kind the command needs)."""
import json
import sys
from pathlib import Path

from ulmfit_demo import config, models
from ulmfit_demo.cli import Bar, add_command, fail
from ulmfit_demo.data import corpora
from ulmfit_demo.models import ensemble, fastcpu, inference, kinds, registry


def register(sub):
    p = add_command(sub, "models")
    msub = p.add_subparsers(dest="models_command", required=True)
    q = msub.add_parser("list", help="saved models, newest first")
    q.add_argument("--kind", choices=models.KINDS)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_list)
    q = msub.add_parser("export", help="write a model as a .zip bundle (safe) or fastai's export.pkl (pickle)")
    q.add_argument("model")
    q.add_argument("--out", required=True, help="FILE.zip for a bundle, FILE.pkl for fastai's learn.export()")
    q.add_argument("--format", choices=("bundle", "fastai"), help="default: from the file extension")
    q.set_defaults(func=cmd_export)
    q = msub.add_parser("import", help="import a .zip bundle, or a fastai .pkl with --trust")
    q.add_argument("file")
    q.add_argument("--name")
    q.add_argument("--trust", action="store_true",
                   help="needed for a .pkl: opening a pickle runs the code inside it; only for files you trust")
    q.set_defaults(func=cmd_import)
    q = msub.add_parser("rename", help="give a model a new display name")
    q.add_argument("model")
    q.add_argument("name")
    q.set_defaults(func=cmd_rename)
    q = msub.add_parser("delete", help="delete a model and its files")
    q.add_argument("model")
    q.set_defaults(func=cmd_delete)
    q = msub.add_parser("ensemble", help="one model that averages the probabilities of classifiers with the same "
                                         "labels (e.g. forward + backward, + the baseline)")
    q.add_argument("members", nargs="+", metavar="MODEL",
                   help="ids or names of classifiers or baselines ('bundled' for the shipped model, or its parts "
                        "such as 'bundled.fwd' when it is an ensemble); two or more")
    q.add_argument("--name", required=True)
    q.add_argument("--weights", type=float, nargs="+", metavar="W", help="one per member (default: equal)")
    q.add_argument("--rule", choices=["mean", "geometric"], default="mean",
                   help="pool the members' probabilities by their weighted mean (default) or weighted geometric mean "
                        "(a mean of log-probabilities: stays calibrated when the members are)")
    q.add_argument("--eval-dataset", metavar="CORPUS",
                   help="measure the ensemble and each member on this corpus's validation rows; stored with it")
    q.add_argument("--eval-max", type=int, metavar="N", help="with --eval-dataset: a seeded sample of N rows at most")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_ensemble)

    q = add_command(sub, "predict")
    q.add_argument("--model", default="latest",
                   help="id or name of a classifier, baseline or ensemble ('bundled': the shipped model; "
                        "'bundled.fwd' and so on: its parts), or 'latest' classifier (default)")
    src = q.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--csv", help="input CSV; needs --text-col and --out")
    q.add_argument("--text-col", help="CSV column holding the text")
    q.add_argument("--out", help="output CSV: the input plus prediction, confidence and p_<label> columns")
    q.add_argument("--precision", choices=["fp32", "bf16", "int8"],
                   help="how a classifier runs on the CPU (default: $ULMFIT_DEMO_FAST_CPU, else the measured fast "
                        "path where it met its targets, else fp32)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_predict)

    q = add_command(sub, "generate")
    q.add_argument("--model", default="latest", help="id, name, or 'latest' language model (default)")
    q.add_argument("--prompt", required=True)
    q.add_argument("--n-words", type=int, default=40)
    q.add_argument("--temperature", type=float, default=0.75)
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--n-samples", type=int, default=1)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_generate)


def cmd_list(args):
    rows = models.list_models(args.kind)
    if args.json:
        print(json.dumps(rows))
        return
    if not rows:
        print("No models yet: train one (python -m ulmfit_demo train ...) or import a bundle.")
    for r in rows:
        m = ", ".join(f"{k} {v:.4g}" for k, v in r["metrics"].items() if isinstance(v, (int, float)))
        shipped = "  [ships with the app, read-only]" if r.get("origin") == "bundled" else ""
        print(f"{r['id']:<28} {r['kind']:<15} {r['name'][:30]:<30} {r['corpus'] or '':<12} {m}{shipped}")
        if r["id"] == registry.BUNDLED_ID and (parts := registry.bundled_members()):
            # Not listed on their own lines (they are parts of it), yet each can be used: `predict --model bundled.fwd`.
            print(f"{'':<28} made of {', '.join(parts)} (each usable by id)")


def cmd_export(args):
    out = Path(args.out)
    fmt = args.format or ("fastai" if out.suffix.lower() == ".pkl" else "bundle")
    try:
        mid = models.resolve(args.model)
        (models.export_fastai if fmt == "fastai" else models.export_bundle)(mid, out)
    except models.ModelError as e:
        return fail(str(e))
    print(out)


def cmd_import(args):
    path = Path(args.file)
    if not path.is_file():
        return fail(f"No such file: {path}.")
    try:
        if path.suffix.lower() == ".pkl":
            if not args.trust:
                return fail("refused " + path.name + " without --trust. " + models.PICKLE_RISK)
            mid = models.import_pkl(path, trust=True, name=args.name)
        else:
            mid = models.import_bundle(path, name=args.name)
    except models.ModelError as e:
        return fail(str(e))
    print(mid)


def cmd_rename(args):
    try:
        row = models.rename(models.resolve(args.model), args.name)
    except models.ModelError as e:
        return fail(str(e))
    print(f"{row['id']}: {row['name']}")


def cmd_delete(args):
    try:
        mid = models.resolve(args.model)
        models.delete(mid)
    except models.ModelError as e:
        return fail(str(e))
    print(f"deleted {mid}")


def cmd_ensemble(args):
    bar = Bar()
    try:
        try:
            ids = [models.resolve(m) for m in args.members]
        except models.ModelError as e:
            raise models.ModelError(f"Cannot build the ensemble: {e}") from None
        mid = ensemble.create(ids, args.name, args.weights, eval_dataset=args.eval_dataset, eval_max=args.eval_max,
                              progress=lambda done, total: bar(f"Scored {done:,} of {total:,} validation texts",
                                                               done / max(total, 1)), rule=args.rule)
    except (models.ModelError, corpora.CorpusError) as e:
        return fail(str(e))
    finally:
        bar.close()
    meta = models.read_meta(mid)
    if args.json:
        print(json.dumps({"model_id": mid, **({"evaluation": meta["evaluation"]} if "evaluation" in meta else {})}))
        return
    print(mid)
    line = ensemble.evaluation_line(meta)
    if line:
        print(line)


def _resolve_sentiment(ref: str) -> str:
    """A model that judges sentiment (a classifier first, then any other kind that can: a baseline, an ensemble);
    `latest` is the newest classifier."""
    try:
        return models.resolve(ref, "classifier")
    except models.ModelError:
        if ref == "latest":
            raise
        for kind, cls in kinds.CLASSES.items():
            if kinds.CLASSIFY in cls.tasks and kind != "classifier":
                try:
                    return models.resolve(ref, kind)
                except models.ModelError:
                    pass
        raise


def cmd_predict(args):
    with fastcpu.using(args.precision):
        return _predict(args)


def _predict(args):
    try:
        mid = _resolve_sentiment(args.model)
        if args.text is not None:
            res = inference.predict(mid, args.text)
            # An ensemble also says what each member said.
            mem = [{k: m[k] for k in ("id", "name", "weight", "label", "probs")} for m in res.get("members", [])]
            if args.json:
                print(json.dumps({"label": res["label"], "probs": res["probs"], **({"members": mem} if mem else {})}))
            else:
                print(f"{res['label']} ({res['probs'][res['label']]:.1%})")
                for m in mem:
                    print(f"  {m['name']}: {m['label']} ({m['probs'][m['label']]:.1%}), weight {m['weight']:.2f}")
            return
        if not args.text_col or not args.out:
            return fail("--csv needs --text-col (the column holding the text) and --out (where to write results).")
        src = Path(args.csv)
        if not src.is_file():
            return fail(f"No such file: {src}.")
        bar = Bar()
        try:
            out = inference.score_csv(mid, src.read_bytes(), args.text_col,
                                      lambda done, total: bar(f"Scored {done:,} of {total:,} texts", done / total))
        finally:
            bar.close()
    except models.ModelError as e:
        return fail(str(e))
    config.atomic_write(Path(args.out), inference.safe_csv(out))
    counts = out["prediction"].value_counts().to_dict()
    if args.json:
        print(json.dumps({"rows": len(out), "out": str(args.out), "counts": counts}))
    else:
        print(f"{len(out):,} rows -> {args.out}  " + ", ".join(f"{k or '(blank)'}: {v}" for k, v in counts.items()),
              file=sys.stdout)


def cmd_generate(args):
    try:
        try:
            mid = models.resolve(args.model, "language_model")
        except models.ModelError:
            named = [r for r in models.list_models() if args.model != "latest" and args.model in (r["id"], r["name"])]
            if named and not kinds.can(named[0], kinds.GENERATE):
                what = kinds.kind_class(named[0]["kind"]).what
                raise models.ModelError(f"{args.model!r} is {what}: it cannot generate text. Pick a language model "
                                        f"(`models list --kind language_model`).") from None
            raise
        res = inference.generate(mid, args.prompt, n_words=args.n_words, temperature=args.temperature,
                                 n_samples=args.n_samples, seed=args.seed)
    except models.ModelError as e:
        return fail(str(e))
    if args.json:
        print(json.dumps({"texts": res["texts"]}))
    else:
        print("\n\n".join(res["texts"]))
