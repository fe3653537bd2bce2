"""``maskface enroll / identify / verify``, ``maskface people ...``, ``maskface eval verify /
identify`` and ``maskface train recognizer``."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from maskface.cli.apps import app, eval_app, people_app, train_app
from maskface.cli.common import FileOption, fail, output_folder, progress, store_exists, user_errors
from maskface.errors import MaskfaceError, require_extra
from maskface.jsonfile import write_json

DbOpt = Annotated[str | None, typer.Option(
    "--db", help="Gallery: an SQLite file or a postgresql:// URL (default: $MASKFACE_DB or "
    "~/.local/share/maskface/gallery.db).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Embedder: sface_masked (default), fused (SFace + reid0095, by mask "
    "state), sface, reid0095 or an .onnx file (default: the gallery's model, else "
    "sface_masked).")]
ThresholdOpt = Annotated[float | None, typer.Option(
    min=-1.0, max=1.0, help="Cosine threshold for a match (default: the model's calibrated one).")]
TemplatesOpt = Annotated[int | None, typer.Option(
    min=0, help="Masked enrolment templates per unmasked enrolment photo (default: the shipped "
         "rule's, weights/fusion.json; 0: none).")]
TemplateWeightOpt = Annotated[float | None, typer.Option(
    help="Masked probe score = w * best masked template + (1 - w) * best unmasked photo "
         "(default: the shipped rule, the better of photo and template, the template's score "
         "lowered by the masked-masked less the masked-unmasked threshold).")]


#: a photo re-read for ``people remask`` is the one enrolled when its face embeds this close to
#: the stored embedding (the same file gives ~1.0; another photo of the same person ~0.5-0.8)
SAME_PHOTO_COSINE = 0.9


def _template_rule(templates: int | None, weight: float | None) -> tuple[int, float | None]:
    """Templates per photo and template weight: as given, else the shipped rule."""
    from maskface.recognize import fusion_config

    cfg = fusion_config()
    n = cfg.get("templates", 0) if templates is None else templates
    w = cfg.get("template_weight") if weight is None else weight
    return n, w


def open_gallery(db: str | None, model: str | None, for_writing: bool):
    """The gallery (``db``, else the default one) and the embedder that matches it: ``model``
    if given, else the one the gallery was made with."""
    from maskface.gallery import Gallery, default_db_path
    from maskface.recognize import create_embedder, embedder_for_gallery

    path = db or default_db_path()
    if not for_writing and not store_exists(path):
        fail(f"{path}: no gallery yet; enrol someone first (maskface enroll NAME PHOTO...)")
    probe = Gallery(path)  # read the model the gallery is bound to, if any
    stored = probe.model
    nobody = not for_writing and len(probe) == 0
    probe.close()
    if nobody:  # else every face is "unknown (-1.000)", unexplained
        typer.echo(f"warning: {path}: nobody is enrolled yet, so every face will be unknown "
                   "(maskface enroll NAME PHOTO...)", err=True)
    embedder = create_embedder(model or "default")
    if not model and stored and stored != embedder.name:
        # a gallery made with another embedder
        embedder = create_embedder(embedder_for_gallery(stored))
    return Gallery(path, model=embedder.name, dim=embedder.dim), embedder


def _mask_flags(image_faces) -> list[bool]:
    """Masked flag of each face (masked or worn incorrectly), from the mask classifier when
    one is installed."""
    from maskface.classify import MaskClassifier
    from maskface.results import MASKED_LABELS

    try:
        clf = MaskClassifier()
    except MaskfaceError:
        return [False] * len(image_faces)
    return [clf.classify(img, face.box[None])[0].label in MASKED_LABELS
            for img, face in image_faces]


def _user() -> str | None:
    """Who ran the command, for the audit log."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no such user in a container
        return None


@app.command()
@user_errors
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name (unique in the gallery).")],
    images: Annotated[list[Path], typer.Argument(help="One or more photos of this person.")],
    db: DbOpt = None,
    model: ModelOpt = None,
    largest: Annotated[bool, typer.Option(
        "--largest", help="Take the largest face of a photo with several.")] = False,
    add: Annotated[bool, typer.Option(
        "--add", help="Add the photos to an already enrolled person.")] = False,
    metadata: Annotated[str | None, typer.Option(
        help='JSON object stored with the person, e.g. \'{"badge": 42}\'.')] = None,
    allow_duplicate: Annotated[bool, typer.Option(
        "--allow-duplicate", help="Store the photos even if the face is already enrolled as "
        "someone else (recorded in the audit log).")] = False,
    templates: TemplatesOpt = None,
    allow_small_face: Annotated[bool, typer.Option(
        "--allow-small-face", help="Enrol from faces under 32 px too (recognition from them "
        "is unreliable).")] = False,
) -> None:
    """Enrol a person from photos of their face (each photo must show one face).

    Each unmasked photo also gets synthetic masked templates (stored flagged masked), so a
    masked face at the door is compared with masked faces. A face already enrolled as someone
    else is refused unless --allow-duplicate is given.
    """
    import numpy as np

    from maskface.align import align_faces
    from maskface.detect import create_detector
    from maskface.errors import InputError
    from maskface.gallery import store_unless_duplicate
    from maskface.gallery.duplicates import ADD_PHOTOS_OVERRIDE, ENROL_OVERRIDE
    from maskface.io import load_image
    from maskface.recognize import single_face
    from maskface.recognize.faces import enrolment_size_problem

    meta = None
    if metadata:
        try:
            meta = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise InputError(f"--metadata is not JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise InputError("--metadata must be a JSON object")
    seen: set[str] = set()
    unique = [p for p in images
              if os.path.realpath(p) not in seen and not seen.add(os.path.realpath(p))]
    if len(unique) < len(images):  # one photo twice would count as two, with its templates
        typer.echo(f"note: {len(images) - len(unique)} photo(s) given twice; each enrolled "
                   "once", err=True)
        images = unique
    gallery, embedder = open_gallery(db, model, for_writing=True)
    with gallery:
        if not add and name.strip() in {p.name for p in gallery.people()}:
            fail(f"'{name}' is already enrolled; use --add to add photos to them")
        detector = create_detector("yunet")
        picked = []
        # Check every photo before storing anything: enrolment is all or nothing. The bar is
        # closed (cleared) before an error reaches the terminal.
        with progress(images, desc="faces", unit="img", leave=False,
                      disable=len(images) < 3) as bar:
            for path in bar:
                img = load_image(path)
                face = single_face(detector, img, str(path), largest).face
                problem = enrolment_size_problem(face, str(path))
                if problem and not allow_small_face:
                    raise InputError(f"{problem}; or pass --allow-small-face")
                picked.append((img, face))
        aligned = [align_faces(img, f.landmarks[None])[0] for img, f in picked]
        flags = _mask_flags(picked)
        emb = embedder.embed(np.stack(aligned), flags)
        # absolute: `people remask` reads the photos again, from whatever folder it is run in
        sources = [os.path.abspath(p) for p in images]
        # One person, one identity: refuse a face enrolled as someone else (the door's
        # threshold), checked as part of the write (another enrolment may commit in between:
        # store_unless_duplicate) and before the masked templates are made.
        exclude = gallery.get(name).id if add else None
        rows = functools.cache(lambda: _with_templates(
            embedder, picked, emb, flags, sources, _template_rule(templates, None)[0], detector))
        warned = []

        def store(dup, version):
            audit = None
            if dup is not None:
                if not allow_duplicate:
                    fail(f"{dup.message(str(images[dup.photo]))} (--allow-duplicate)")
                if not warned:  # once, even on a retry
                    warned.append(dup)
                    typer.echo(f"warning: {images[dup.photo]} matches {dup.name!r} (id "
                               f"{dup.person_id}, score {dup.score:.3f}); stored anyway "
                               "(--allow-duplicate), recorded in the audit log", err=True)
                audit = (ADD_PHOTOS_OVERRIDE if add else ENROL_OVERRIDE,
                         {"matched": dup.to_dict(), "by": _user(), "via": "cli"})
            rows_emb, rows_flags, rows_sources = rows()
            if add:
                return gallery.add_embeddings(name, rows_emb, rows_flags, rows_sources,
                                              audit=audit, expect_version=version)
            return gallery.enroll(name, rows_emb, rows_flags, meta, rows_sources, audit=audit,
                                  expect_version=version)

        person = store_unless_duplicate(gallery, embedder.weigh(emb, flags), flags, None,
                                        store, exclude=exclude)
        nt = person.n_templates
        typer.echo(f"{'added to' if add else 'enrolled'} {person.name} (id {person.id}): "
                   f"{person.n_embeddings - nt} embeddings ({person.n_masked - nt} masked) "
                   f"+ {nt} synthetic masked templates, model {embedder.label}, "
                   f"gallery {gallery.path}")


def _with_templates(embedder, picked, emb, flags, sources, n: int, detector=None):
    """The photos' embeddings followed by the masked templates of each unmasked photo."""
    from maskface.recognize.templates import template_embeddings, with_templates

    if n <= 0:
        return emb, list(flags), list(sources)
    return with_templates(emb, flags, sources, [
        None if masked else template_embeddings(embedder, img, face, source, n=n,
                                                detector=detector)
        for (img, face), masked, source in zip(picked, flags, sources)])


@app.command()
@user_errors
def identify(
    images: Annotated[list[str], typer.Argument(help="Images, folders or globs.")],
    db: DbOpt = None,
    model: ModelOpt = None,
    threshold: ThresholdOpt = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")
                   ] = Path("maskface-out/identify"),
    classifier: Annotated[str, typer.Option(
        help="Mask classifier ONNX file, 'default', or 'none' to skip.")] = "default",
) -> None:
    """Say who is in each photo (or "unknown"); write annotated images and JSON."""
    from maskface.io.sources import expand_sources
    from maskface.pipeline import Pipeline
    from maskface.recognize import Recognizer

    sources = expand_sources(images)
    if not sources:
        fail("no inputs given")
    gallery, embedder = open_gallery(db, model, for_writing=False)
    with gallery:
        recognizer = Recognizer(embedder, gallery, threshold)
        if threshold is None:
            from maskface.gallery.thresholds import threshold_source, thresholds_for

            thresholds_in_force = {**thresholds_for(gallery, recognizer.threshold),
                                   "source": threshold_source(gallery)}
        else:
            thresholds_in_force = {"every condition": threshold, "source": "--threshold"}
        try:
            pipe = Pipeline(classifier=None if classifier == "none" else classifier,
                            recognizer=recognizer)
        except MaskfaceError:  # no mask classifier installed: identities only
            pipe = Pipeline(classifier=None, recognizer=recognizer)
        output_folder(out)
        failed = 0
        for src in sources:
            if src.error or src.kind == "video":
                failed += 1
                typer.echo(f"error: {src.path}: {src.error or 'videos are not supported here'}",
                           err=True)
                continue
            try:
                result = pipe.analyze(src.path)
            except MaskfaceError as exc:
                failed += 1
                typer.echo(f"error: {exc}", err=True)
                continue
            result.save(out / f"{src.path.stem}.jpg")
            record = result.to_dict()
            # each face's identity names the threshold it was judged by; these are all of them
            record["thresholds"] = thresholds_in_force
            record["model"] = embedder.label
            write_json(out / f"{src.path.stem}.json", record, indent=2)
            said = [f"{i.name if i.known else 'unknown'} ({i.score:.3f}, threshold "
                    f"{i.threshold:.3f}, {i.condition})" if i.threshold is not None else
                    f"{i.name if i.known else 'unknown'} ({i.score:.3f})"
                    for i in (f.identity for f in result.faces if f.identity)]
            typer.echo(f"{src.path}: " + (", ".join(said) or "no face"))
        typer.echo(f"annotated images and JSON in {out}/", err=True)
        if sources.skipped:
            typer.echo(sources.skipped_note(), err=True)
    if failed:
        raise typer.Exit(1)


@app.command()
@user_errors
def verify(
    image_a: Annotated[Path, typer.Argument(help="First photo (one face).")],
    image_b: Annotated[Path, typer.Argument(help="Second photo (one face).")],
    model: Annotated[str, typer.Option(help="Embedder name or .onnx file.")] = "default",
    threshold: ThresholdOpt = None,
    largest: Annotated[bool, typer.Option(
        "--largest", help="Take the largest face of a photo with several (as the API's "
        "largest=true); without it such a photo is refused.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Are these two photos of the same person? Prints the score against the threshold."""
    import numpy as np

    from maskface.align import align_faces
    from maskface.detect import create_detector
    from maskface.gallery.thresholds import condition, model_threshold
    from maskface.io import load_image
    from maskface.recognize import create_embedder, default_threshold, single_face
    from maskface.recognize.faces import comparison_size_warning

    embedder = create_embedder(model)
    detector = create_detector("yunet")
    crops, picked = [], []
    for path in (image_a, image_b):
        img = load_image(path)
        face = single_face(detector, img, str(path), pick_largest=largest).face
        crops.append(align_faces(img, face.landmarks[None])[0])
        picked.append((img, face))
    flags = _mask_flags(picked)
    ea, eb = embedder.embed(np.stack(crops), flags)
    # b is the probe: a fused embedder weighs its backbones by b's mask state
    score = float(ea @ embedder.weigh(eb, flags[1:])[0])
    cond = condition(flags[1], flags[0])
    t = threshold if threshold is not None else \
        model_threshold(embedder.name, cond, default_threshold(embedder))
    same = score >= t
    warnings = [w for (_, face), path in zip(picked, (image_a, image_b), strict=True)
                if (w := comparison_size_warning(face, str(path)))]
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    if json_:
        typer.echo(json.dumps({"image_a": str(image_a), "image_b": str(image_b),
                               "model": embedder.label, "score": round(score, 4),
                               "threshold": round(t, 4), "condition": cond, "same": same,
                               "warnings": warnings}))
    else:
        typer.echo(f"score {score:.3f} (threshold {t:.3f}, {cond}): "
                   f"{'same person' if same else 'different people'}")


# -- people -----------------------------------------------------------------------------------
def _gallery(db: str | None):
    from maskface.gallery import Gallery, default_db_path

    path = db or default_db_path()
    if not store_exists(path):
        fail(f"{path}: no gallery yet")
    return Gallery(path)


@people_app.command("list")
@user_errors
def people_list(
    db: DbOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    search: Annotated[str | None, typer.Option(
        help="Only people whose name contains this (any case).")] = None,
) -> None:
    """List enrolled people."""
    with _gallery(db) as g:
        people = g.people(name_contains=search)
        if json_:
            typer.echo(json.dumps([p.to_dict() for p in people], indent=2))
            return
        if not people:
            typer.echo(f"no one enrolled whose name contains {search!r}" if search else
                       "no one enrolled")
        for p in people:
            typer.echo(f"{p.id:>5}  {p.name:<30} {p.n_embeddings} embeddings "
                       f"({p.n_masked} masked, {p.n_templates} of them synthetic templates)  "
                       f"since {p.created_at}")
        stale = g.templates_not_realigned()
        if stale:
            typer.echo(f"note: {stale} masked templates were made before masked faces were "
                       "re-aligned; 'maskface people remask' makes them again from the "
                       "enrolment photos still on disk (others: enrol the photos again)")


@people_app.command("remove")
@user_errors
def people_remove(
    person: Annotated[str, typer.Argument(help="Name or id.")],
    db: DbOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
                   ] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="The service's config file, for where its snapshot photos are "
        "(default: 'snapshots' beside the database).")] = None,
) -> None:
    """Delete a person, every one of their embeddings and the snapshot photos of their access
    events (the events stay, without photos)."""
    from maskface.gallery import default_db_path
    from maskface.service.config import load_config
    from maskface.service.events import EventLog

    path = db or default_db_path()
    snapshots = load_config(config).with_db(path).snapshot_dir
    with _gallery(db) as g:
        p = g.get(person)
        if not yes and not typer.confirm(f"delete {p.name} (id {p.id}) and their "
                                         f"{p.n_embeddings} embeddings?"):
            raise typer.Exit(1)
        n = g.delete(p.id)
        photos = EventLog(g.db).forget_photos(p.id, snapshots)
        typer.echo(f"deleted {p.name} (id {p.id}), {n} embeddings and {photos} snapshot photos")


@people_app.command("rename")
@user_errors
def people_rename(
    person: Annotated[str, typer.Argument(help="Name or id.")],
    new_name: Annotated[str, typer.Argument(help="The new name.")],
    db: DbOpt = None,
) -> None:
    """Rename an enrolled person."""
    with _gallery(db) as g:
        old = g.get(person)
        p = g.rename(old.id, new_name)
        typer.echo(f"renamed {old.name} -> {p.name} (id {p.id})")


@people_app.command("audit")
@user_errors
def people_audit(
    db: DbOpt = None,
    limit: Annotated[int, typer.Option(help="Newest N events.", min=1)] = 50,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the gallery's audit log (duplicate enrolments let through), newest first."""
    with _gallery(db) as g:
        events, total = g.audit_events(limit=limit)
    if json_:
        typer.echo(json.dumps([e.to_dict() for e in events], indent=2))
        return
    if not events:
        typer.echo("no audit events")
    for e in events:
        m = e.details.get("matched", {})
        typer.echo(f"{e.time}  {e.action}  {e.person_name} (id {e.person_id}) matched "
                   f"{m.get('name')!r} (id {m.get('person_id')}, score {m.get('score')}) "
                   f"by {e.details.get('by')} via {e.details.get('via')}")


@people_app.command("remask")
@user_errors
def people_remask(
    people: Annotated[list[str] | None, typer.Argument(
        help="Names or ids (default: everyone).")] = None,
    db: DbOpt = None,
    templates: TemplatesOpt = None,
) -> None:
    """(Re)make the synthetic masked templates of enrolled people from their enrolment photos.

    For galleries enrolled before templates existed: each unmasked embedding whose source photo
    is still on disk, and still shows the face enrolled from it, gets its templates again (its
    old synthetic ones are replaced). Templates of photos that are not on disk or now show
    another face, and of people enrolled through the API (no photo paths), are kept as they
    are: to remake those, enrol the photos again (maskface enroll --add)."""
    import numpy as np

    from maskface.align import align_faces
    from maskface.detect import create_detector
    from maskface.io import load_image
    from maskface.recognize import single_face
    from maskface.recognize.templates import N_TEMPLATES, SOURCE_PREFIX, template_embeddings

    n = templates if templates is not None else (_template_rule(None, None)[0] or N_TEMPLATES)
    gallery, embedder = open_gallery(db, None, for_writing=False)
    detector = create_detector("yunet")
    done = missing = changed = kept = 0
    with gallery:
        targets = [gallery.get(p) for p in people] if people else gallery.people()
        for person in progress(targets, desc="people", unit="person", leave=False,
                               disable=len(targets) < 3):
            vectors, flags, sources = gallery.embedding_rows(person.id)
            photos = [(v, s) for v, m, s in zip(vectors, flags, sources) if not m and s
                      and not s.startswith(SOURCE_PREFIX)]
            rows, srcs, remade = [], [], set()
            for enrolled, src in photos:
                if not Path(src).is_file():
                    missing += 1
                    continue
                img = load_image(src)
                face = single_face(detector, img, src, pick_largest=True).face
                # The path is only where the photo was: another file there now (or, for a
                # path enrolled relative to another folder, here) must not become this
                # person's templates, or a stranger's masked face would open their door.
                now = embedder.embed(align_faces(img, face.landmarks[None]), [False])[0]
                if float(now @ enrolled) < SAME_PHOTO_COSINE:
                    changed += 1
                    typer.echo(f"warning: {src} no longer shows the face enrolled from it; "
                               "its templates kept", err=True)
                    continue
                t, ts = template_embeddings(embedder, img, face, src, n=n, detector=detector)
                rows += list(t)
                srcs += ts
                remade.add(src)

            def of_remade(source: str, remade=remade) -> bool:
                # synthetic-mask:<type>[/realigned]:<photo>: only a photo made again loses its old
                # templates; those of photos that are gone (or never had a path) are all it has
                return source.split(":", 2)[-1] in remade

            removed = gallery.replace_embeddings(person.id, SOURCE_PREFIX,
                                                 np.stack(rows) if rows else None, True, srcs,
                                                 which=of_remade)
            left = sum(1 for s in sources if s and s.startswith(SOURCE_PREFIX)) - removed
            kept += left
            done += 1
            typer.echo(f"{person.name}: {len(rows)} masked templates made from "
                       f"{len(remade)} photos ({removed} old ones replaced"
                       + (f", {left} of photos not remade kept)" if left else ")"))
    typer.echo(f"remasked {done} people; {missing} enrolment photos no longer on disk"
               + (f", {changed} showing another face" if changed else "")
               + (f" (their {kept} templates kept)" if kept else ""), err=True)


@app.command()
@user_errors
def calibrate(
    db: DbOpt = None,
    far: Annotated[float | None, typer.Option(
        help="Target false-accept rate of every condition (one stranger against one "
             "person); default 0.001.")] = None,
    fpir: Annotated[float | None, typer.Option(
        help="Instead of --far: target rate at which a stranger passes for anyone enrolled "
             "(false-positive identification rate).")] = None,
    report: Annotated[Path, FileOption(
        help="ROC report (JSON, PNG beside it).")] = Path("maskface-out/calibration.json"),
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Report only; do not store the thresholds.")] = False,
) -> None:
    """Fit per-condition thresholds at a target FAR (or FPIR) from the gallery's own people.

    One threshold per condition (unmasked-unmasked, masked-unmasked, masked-masked), stored in
    the gallery; writes a ROC report.

    Each stored embedding is a probe compared, as the door compares, with each person (the best
    of their templates): impostor scores against other people, genuine ones against the
    person's own other photos and masked templates."""
    from maskface.gallery.thresholds import calibrate as fit
    from maskface.gallery.thresholds import store_calibration

    if far is not None and fpir is not None:
        fail("give --far or --fpir, not both (one target sets the thresholds)")
    far = 1e-3 if far is None else far
    if not 0 < far < 1:
        fail(f"--far {far} must be between 0 and 1")
    if fpir is not None and not 0 < fpir < 1:
        fail(f"--fpir {fpir} must be between 0 and 1")
    require_extra("eval", "matplotlib", doing="calibrate's ROC plot")  # before it stores
    gallery, embedder = open_gallery(db, None, for_writing=False)
    with gallery:
        out = fit(gallery, embedder.weigh, far, fpir,
                  progress=lambda it: progress(it, desc="calibrate", unit="block", leave=False))
        if not dry_run:
            store_calibration(gallery, out["table"])
    rep = {"model": embedder.label, "gallery": str(gallery.path), "stored": not dry_run,
           **out["report"]}
    report.parent.mkdir(parents=True, exist_ok=True)
    write_json(report, rep, indent=2)
    png = _plot_roc(rep, report.with_suffix(".png"))
    for c, e in rep["conditions"].items():
        if "threshold" not in e:
            typer.echo(f"{c}: no impostor comparisons (needs people enrolled in that "
                       "condition)")
            continue
        tar = "n/a" if e["tar"] is None else f"{e['tar']:.2%}"
        aim = f"FPIR {fpir:g}" if fpir is not None else f"FAR {far:g}"
        if e["source"] == "model":
            typer.echo(f"{c}: too few comparisons to resolve {aim}; keeping the model's "
                       f"threshold {e['threshold']:.3f} (this gallery alone gave "
                       f"{e['site_threshold']:.3f}, looser)")
        typer.echo(f"{c}: threshold {e['threshold']:.3f} at {aim}: FAR {e['far_measured']:.2e} "
                   f"over {e['impostor_comparisons']} probe-person impostor comparisons "
                   f"(resolvable {e['far_resolvable']:.1e}), FPIR {e['fpir_measured']:.2%} over "
                   f"{e['strangers']} strangers (resolvable {e['fpir_resolvable']:.1e}); "
                   f"TAR {tar} over {e['genuine_comparisons']} genuine probes")
    typer.echo(f"report: {report}\nROC: {png}", err=True)


def _plot_roc(rep: dict, path: Path) -> Path:
    from maskface.eval.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    plotted = False
    for c, e in rep["conditions"].items():
        pts = [p for p in e.get("roc", []) if p[1] > 0]
        if pts:
            ax.plot([p[1] for p in pts], [p[2] for p in pts], label=c)
            plotted = True
    ax.set_xscale("log")
    if rep.get("far"):
        ax.axvline(rep["far"], color="grey", ls="--", lw=0.8)
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title(f"{rep['model']}: {rep['people']} people")
    if plotted:  # else no genuine comparisons yet (one photo each): say so, not matplotlib
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no genuine comparisons: enrol people with two photos or more",
                ha="center", va="center", transform=ax.transAxes)
    return save_figure(fig, path, dpi=100)


# -- evaluation -------------------------------------------------------------------------------
def _ci(res: dict, key: str) -> str:
    """The interval a report carries for figure ``key``, for its summary line."""
    from maskface.eval.metrics import interval_text

    return interval_text(res.get(f"{key}_ci95"))


@eval_app.command("verify")
@user_errors
def eval_verify(
    report: Annotated[Path, FileOption(help="JSON report to write (PNG beside it).")],
    lfw: Annotated[Path | None, typer.Option(help="LFW folder (pairs.txt + images/).")] = None,
    pairs: Annotated[Path | None, typer.Option(help="CSV of path_a,path_b,same.")] = None,
    mask: Annotated[str, typer.Option(help="Mask no image (none), the second (one) or both.")
                    ] = "none",
    model: Annotated[str, typer.Option(help="Embedder name or .onnx file.")] = "default",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic masks.")] = 0,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Keep aligned (and masked) crops here across runs, e.g. to compare models.")
                         ] = None,
    templates: TemplatesOpt = None,
    template_weight: TemplateWeightOpt = None,
) -> None:
    """Pair verification accuracy (k-fold), ROC AUC and TAR@FAR, with a score histogram.

    The first photo of a pair is the enrolled one: with --mask one it is unmasked and gets the
    masked enrolment templates."""
    from maskface.eval.verify import (
        evaluate_pairs,
        plot_pair_errors,
        plot_score_histograms,
        read_lfw_pairs,
        read_pairs_csv,
    )
    from maskface.recognize import create_embedder
    from maskface.recognize.faces import portrait_detector

    if (lfw is None) == (pairs is None):
        fail("give exactly one of --lfw DIR or --pairs CSV")
    pair_list = read_lfw_pairs(lfw) if lfw else read_pairs_csv(pairs)
    embedder = create_embedder(model)
    cache = cache_dir / f"aligned_crops_seed{seed}.npz" if cache_dir else None
    n_tmpl, t_weight = _template_rule(templates, template_weight)
    res = evaluate_pairs(pair_list, embedder, portrait_detector(), mask, seed,
                         crop_cache=cache, templates=n_tmpl, template_weight=t_weight)
    scores, same = res.pop("_scores"), res.pop("_same")
    errors, crops = res.pop("_errors"), res.pop("_crops")
    res["source"] = str(lfw or pairs)
    report.parent.mkdir(parents=True, exist_ok=True)
    png = plot_score_histograms(scores, same, res["threshold"], report.with_suffix(".png"),
                                f"{embedder.label}, mask={mask}: acc {res['accuracy']:.2%}")
    res["histogram_png"] = str(png)
    sheet = plot_pair_errors(errors, crops, report.with_name(report.stem + "_errors.png"))
    if sheet is not None:
        res["errors_png"] = str(sheet)
    write_json(report, res, indent=2)
    typer.echo(f"{embedder.label} mask={mask}: accuracy {res['accuracy']:.2%} "
               f"± {res['accuracy_std']:.2%} over {res['folds']} folds{_ci(res, 'accuracy')}, "
               f"ROC AUC {res['roc_auc']:.4f}, TAR@FAR=1e-3 {res['tar_at_far_1e-3']:.2%}"
               f"{_ci(res, 'tar_at_far_1e-3')}; "
               f"{res['no_face_fallback']} images without a detected face")
    typer.echo(f"report: {report}\nhistogram: {png}", err=True)
    if sheet is not None:
        typer.echo(f"errors: {sheet}", err=True)


@eval_app.command("identify")
@user_errors
def eval_identify(
    report: Annotated[Path, FileOption(help="JSON report to write.")],
    faces: Annotated[Path | None, typer.Option(
        help="Identity folders (<identity>/*.jpg) (default: vggface2-sample in the data).")
                     ] = None,
    masked: Annotated[Path | None, typer.Option(
        help="Masked copies (<identity>/*) (default: mask queries on the fly).")] = None,
    split: Annotated[Path | None, typer.Option(
        help="Training card JSON whose held-out identities to use (default: all).")] = None,
    model: Annotated[str, typer.Option(help="Embedder name or .onnx file.")] = "default",
    enrol: Annotated[int, typer.Option(min=1, help="Unmasked photos enrolled per identity.")
                     ] = 3,
    unknown_fraction: Annotated[float, typer.Option(
        min=0.0, max=0.9,
        help="Share of identities left out of the gallery as unknown people.")] = 0.2,
    threshold: ThresholdOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the enrol/unknown draw and the masks.")
                    ] = 0,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Keep aligned (and masked) crops here across runs, e.g. to compare models.")
                         ] = None,
    mask_queries: Annotated[bool, typer.Option(
        "--mask-queries/--unmasked-queries",
        help="Query masked photos (the protocol) or the same photos unmasked (the "
             "recogniser's ceiling on this data).")] = True,
    templates: TemplatesOpt = None,
    template_weight: TemplateWeightOpt = None,
) -> None:
    """Rank-1 identification and open-set rejection: enrol unmasked photos, query masked ones."""
    from maskface.eval.identify import run_identify_eval

    n_tmpl, t_weight = _template_rule(templates, template_weight)

    res = run_identify_eval(report, faces=faces, masked_dir=masked, split_card=split,
                            model=model, n_enrol=enrol, unknown_fraction=unknown_fraction,
                            threshold=threshold, seed=seed,
                            crop_cache=cache_dir / f"identify_crops_seed{seed}.npz"
                            if cache_dir else None, mask_queries=mask_queries,
                            templates=n_tmpl, template_weight=t_weight,
                            thresholds=_model_thresholds(model))
    def pct(key: str) -> str:  # n/a where the report has null (no unknown queries)
        v = res.get(key)
        return "n/a" if v is None or v != v else f"{v:.2%}"

    typer.echo(f"{res['model']}: rank-1 {pct('rank1')}{_ci(res, 'rank1')} over "
               f"{res['known_queries']} {res['queries']} "
               f"queries of {res['gallery_people']} enrolled people; at threshold "
               f"{res['threshold']:.3f}: TPIR {pct('tpir')}, FPIR {pct('fpir')} "
               f"({res['unknown_queries']} unknown queries); TPIR at FPIR 1 % "
               f"{pct('tpir_at_fpir_0.01')}{_ci(res, 'tpir_at_fpir_0.01')}")
    typer.echo(f"report: {report}", err=True)
    if res.get("errors_png"):
        typer.echo(f"errors: {res['errors_png']}", err=True)


def _model_thresholds(model: str) -> dict[str, float] | None:
    """The shipped per-condition thresholds of a named model's embedding space, if fitted."""
    from maskface.gallery.thresholds import CONDITIONS, model_thresholds
    from maskface.recognize import create_embedder

    try:
        name = create_embedder(model).name
    except MaskfaceError:
        return None
    table = model_thresholds(name)
    return {c: table[c] for c in CONDITIONS} if table else None


@app.command("gallery-bench")
@user_errors
def gallery_bench(
    report: Annotated[Path | None, FileOption(help="Write the result as JSON here.")] = None,
    n: Annotated[int, typer.Option(min=1, help="Enrolled embeddings.")] = 100_000,
    queries: Annotated[int, typer.Option(min=1, help="Timed queries (at most --n).")] = 200,
    index: Annotated[str, typer.Option(
        help="auto (exact below 200,000 embeddings, IVF above), exact or ivf.")] = "auto",
) -> None:
    """Time 1:N search over N random enrolled embeddings.

    Build time, memory, p50/p95 latency and recall@1 against exact search."""
    from maskface.gallery.bench import benchmark_search

    if index not in ("auto", "exact", "ivf"):
        fail(f"--index must be auto, exact or ivf, not '{index}'")
    res = benchmark_search(n, n_queries=queries, index=index)
    typer.echo(json.dumps(res, indent=2))
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        write_json(report, res, indent=2)


#: options shared by the recognition training commands (one identity split for all)
IdentityFaces = Annotated[Path | None, typer.Option(
    help="Identity folders (default: vggface2-sample in the data).")]
FeatureCache = Annotated[Path, typer.Option(help="Crop and backbone feature cache folder.")]
HoldoutIds = Annotated[int, typer.Option(help="Identities held out for identification.")]
ValIds = Annotated[int, typer.Option(help="Identities held out for validation.")]


@train_app.command("recognizer")
@user_errors
def train_recognizer(
    out: Annotated[Path, typer.Option(help="Output folder (model, card, curves).")
                   ] = Path("runs/recognizer"),
    faces: IdentityFaces = None,
    masked: Annotated[Path | None, typer.Option(
        help="Synthetic masked copies of the same identities (maskface synth output).")] = None,
    cache: FeatureCache = Path("runs/recognizer/cache"),
    epochs: Annotated[int, typer.Option(min=1)] = 20,
    holdout: HoldoutIds = 120,
    val: ValIds = 60,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Adapt the recogniser to masked faces (head on the frozen SFace backbone); exports ONNX."""
    # before anything runs: the trainer imports them only once it starts
    require_extra("train", "torch", "onnx", doing="training")
    from maskface.train.recognizer import TrainConfig, train
    cfg = TrainConfig(out=out, faces=faces, masked=masked, cache=cache, epochs=epochs,
                      holdout=holdout, val=val, seed=seed)
    card = train(cfg)
    typer.echo(json.dumps({k: card[k] for k in ("best_epoch", "val_pair_accuracy", "onnx")
                           if k in card}, indent=2))


@train_app.command("alignment")
@user_errors
def train_alignment(
    out: Annotated[Path, typer.Option(help="Output folder (model, card).")
                   ] = Path("runs/alignment"),
    faces: IdentityFaces = None,
    cache: FeatureCache = Path("runs/recognizer/cache"),
    holdout: HoldoutIds = 120,
    val: ValIds = 60,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Fit where a masked face's landmarks really are (re-alignment before embedding)."""
    require_extra("train", "onnx", doing="fitting")  # a least-squares fit written as ONNX
    from maskface.train.masked_alignment import AlignmentConfig, fit
    card = fit(AlignmentConfig(out=out, faces=faces, cache=cache, holdout=holdout, val=val,
                               seed=seed))
    typer.echo(json.dumps({k: card[k] for k in ("penalty", "val_landmark_rms_px",
                                                "val_pair_accuracy", "onnx")}, indent=2))
