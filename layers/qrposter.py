"""The printable QR-code poster (信访受理二维码海报) of a reporting point.

segno (a maintained, dependency-free QR encoder) makes the code; Pillow lays it out on an A5 page
(148 × 210 mm at 200 dpi) with the unit's name above and how to use it below, and writes PNG or
PDF (Pillow's PDF writer: the page as one image, which every printer takes). The text is drawn
with a CJK font found on the system (WenQuanYi Micro Hei or Noto CJK; ``fonts-wqy-microhei`` on
Debian): a poster without its unit's name is useless, so a missing font is an error that says
what to install.

The QR code error-correction level is Q (25 %): a poster in a stairwell gets scratched.
"""

from __future__ import annotations

import io
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont

from geo.errors import GridgovError

PAGE_PX = (1169, 1654)
"""A5 at 200 dpi."""
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
TITLE = "信访受理二维码"
LINES = (
    "扫码反映问题 · 24 小时受理",
    "提交后请记下信访件编号，可凭编号和手机号后四位查询办理进度",
    "信访人个人信息依《信访工作条例》保密",
)


class PosterError(GridgovError):
    """The poster cannot be made (no CJK font, an unknown output type)."""


def save_poster(path: Path, *, url: str, unit_name: str, unit_code: str) -> Path:
    """Write the poster for ``url`` to ``path`` (.png or .pdf); return the path."""
    suffix = path.suffix.lower()
    if suffix not in (".png", ".pdf"):
        raise PosterError(f"海报只能保存为 .png 或 .pdf：{path.name} / the poster is a .png or .pdf")
    image = poster_image(url=url, unit_name=unit_name, unit_code=unit_code)
    if suffix == ".pdf":
        image.save(path, "PDF", resolution=200.0)
    else:
        image.save(path, "PNG", dpi=(200, 200))
    return path


def poster_image(*, url: str, unit_name: str, unit_code: str) -> Image.Image:
    """Return the poster as an image: title, unit name, the QR code of ``url``, the usage lines."""
    font_path = _font()
    page = Image.new("RGB", PAGE_PX, "white")
    draw = ImageDraw.Draw(page)
    width = PAGE_PX[0]
    y = 90
    for text, size in ((TITLE, 84), (unit_name, 64), (unit_code, 36)):
        font = ImageFont.truetype(font_path, _fitting(draw, text, font_path, size, width - 120))
        box = draw.textbbox((0, 0), text, font=font)
        draw.text(((width - (box[2] - box[0])) / 2, y), text, font=font, fill="black")
        y += (box[3] - box[1]) + 40
    code = _qr_image(url, target=int(width * 0.66))
    page.paste(code, ((width - code.width) // 2, y + 20))
    y += code.height + 70
    for text in (*LINES, url):
        size = 34 if text != url else 26
        font = ImageFont.truetype(font_path, _fitting(draw, text, font_path, size, width - 120))
        box = draw.textbbox((0, 0), text, font=font)
        draw.text(((width - (box[2] - box[0])) / 2, y), text, font=font, fill="black")
        y += (box[3] - box[1]) + 26
    return page


def _qr_image(url: str, *, target: int) -> Image.Image:
    qr = segno.make(url, error="q", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=max(target // modules, 1), border=4)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def _fitting(draw: ImageDraw.ImageDraw, text: str, font_path: str, size: int, room: int) -> int:
    """The largest size ≤ ``size`` at which ``text`` fits in ``room`` pixels (long unit names)."""
    while size > 12:
        box = draw.textbbox((0, 0), text, font=ImageFont.truetype(font_path, size))
        if box[2] - box[0] <= room:
            return size
        size -= 4
    return size


def _font() -> str:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise PosterError("未找到中文字体，请安装 fonts-wqy-microhei / no CJK font found: install "
                      "fonts-wqy-microhei (or Noto Sans CJK)")
