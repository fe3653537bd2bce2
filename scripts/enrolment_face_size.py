"""How small may an enrolment photo's face be? On the VALIDATION identities of the recogniser's
card (vggface2-sample), photo 0 of each identity is enrolled shrunk so its face is N px and
compared, as the door would, with photos 1-3 as they are (genuine pairs) and with photo 1 of the
next 20 identities (impostor pairs), at the model's unmasked-unmasked threshold.

    PYTHONPATH=src .venv/bin/python scripts/enrolment_face_size.py [--sizes 48,40,32,28,24,20,16]

Chose ``maskface.recognize.faces.MIN_ENROLMENT_FACE_PX`` (docs/recognition.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src/maskface/weights"


def main() -> None:
    from maskface.align import align_face
    from maskface.eval.identify import default_data_root
    from maskface.gallery.thresholds import model_threshold
    from maskface.recognize import create_embedder
    from maskface.recognize.faces import central_face, portrait_detector
    from maskface.train.recog_data import IdentitySplit, identity_photos

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="48,40,32,28,24,20,16")
    ap.add_argument("--impostors", type=int, default=20)
    args = ap.parse_args()
    split = IdentitySplit.from_card(WEIGHTS / "recognizer_sface_masked.card.json")
    photos = identity_photos(default_data_root() / "faces" / "vggface2-sample")
    names = [k for k in sorted(split.val) if k in photos and len(photos[k]) >= 4]
    det, emb = portrait_detector(), create_embedder("sface_masked")
    thr = model_threshold(emb.name, "unmasked-unmasked", 0.363)

    def embed(img):
        face = central_face(det, img).face
        vec = emb.embed(align_face(img, face.landmarks)[None], [False])[0]
        return vec, min(face.width, face.height)

    probes = {n: [embed(cv2.imread(str(p)))[0] for p in photos[n][1:4]] for n in names}
    print(f"{len(names)} validation identities, threshold {thr:.4f}")
    for size in [None, *(int(s) for s in args.sizes.split(","))]:
        gen = gen_ok = imp = imp_ok = 0
        own = []
        for k, n in enumerate(names):
            img = cv2.imread(str(photos[n][0]))
            vec, px = embed(img)
            own.append(px)
            if size is not None:
                f = size / px
                vec, _ = embed(cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA))
            scores = [float(vec @ q) for q in probes[n]]
            gen, gen_ok = gen + len(scores), gen_ok + sum(s >= thr for s in scores)
            for m in names[k + 1:k + 1 + args.impostors]:
                imp, imp_ok = imp + 1, imp_ok + (float(vec @ probes[m][0]) >= thr)
        what = f"{size} px" if size else f"as photographed ({np.median(own):.0f} px median)"
        print(f"enrolment face {what}: genuine accepted {gen_ok / gen:.3f} ({gen_ok}/{gen}), "
              f"impostors accepted {imp_ok / imp:.4f} ({imp_ok}/{imp})", flush=True)


if __name__ == "__main__":
    main()
