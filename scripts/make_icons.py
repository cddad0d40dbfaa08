"""Draw the staff app's PNG icons from the design of `static/icon.svg` (Pillow cannot read SVG):
the touch icon iOS needs (180), the manifest's 192 and 512, a maskable 512 whose content stays in
the safe zone (the inner circle of 80 %), and a monochrome notification badge (96).

    .venv/bin/python scripts/make_icons.py            # writes them beside icon.svg
    .venv/bin/python scripts/make_icons.py --check    # exit 1 when a committed one differs

Reproducible: the same Pillow gives the same pixels (tests/notify/test_app_install.py checks)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

STATIC = Path(__file__).resolve().parents[1] / "services/notify/src/voc_notify/static"
BRAND, WHITE, ACCENT = (15, 92, 77, 255), (255, 255, 255, 255), (228, 87, 46, 255)
SUPERSAMPLE = 4


def draw(size: int, *, scale: float = 1.0, badge: bool = False) -> Image.Image:
    """The 512-unit design at `size` px, its content scaled by `scale` about the centre; the
    badge is the speech bubble alone, white on transparent (Android tints it)."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0) if badge else BRAND)
    pen = ImageDraw.Draw(image)
    unit = big / 512

    def at(x: float, y: float) -> tuple[float, float]:
        return ((256 + (x - 256) * scale) * unit, (256 + (y - 256) * scale) * unit)

    bubble = WHITE
    pen.rounded_rectangle((*at(96, 150), *at(416, 350)), radius=40 * scale * unit, fill=bubble)
    pen.polygon([at(250, 349), at(176, 408), at(176, 349)], fill=bubble)
    for x, colour in ((196, BRAND), (256, BRAND), (316, ACCENT)):
        cx, cy = at(x, 250)
        r = 22 * scale * unit
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(0, 0, 0, 0) if badge else colour)
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    return image if badge else image.convert("RGB")  # touch icons: no transparency


ICONS = {
    "icon-180.png": lambda: draw(180),
    "icon-192.png": lambda: draw(192),
    "icon-512.png": lambda: draw(512),
    "icon-maskable-512.png": lambda: draw(512, scale=0.8),
    "badge-96.png": lambda: draw(96, scale=1.3, badge=True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files")
    args = parser.parse_args()
    stale = []
    for name, make in ICONS.items():
        image, path = make(), STATIC / name
        if args.check:
            with Image.open(path) as committed:
                same = committed.mode == image.mode and committed.size == image.size
                if not same or ImageChops.difference(committed, image).getbbox() is not None:
                    stale.append(name)
        else:
            image.save(path, optimize=True)
    if stale:
        print(f"stale icons (run scripts/make_icons.py): {', '.join(stale)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
