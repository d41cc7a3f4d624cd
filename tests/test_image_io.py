"""One image loader for every entry point: EXIF orientation, high bit depth and other modes, clear errors."""

from __future__ import annotations

import csv
import io
import random

import numpy as np
import pytest
from PIL import Image
from PIL.ExifTags import Base

from data.demo_records import ByteTokenizer, demo_record
from data.image_io import ImageLoadError, load_image, to_rgb
from data.render import SampleError, SampleRenderer
from data.shapes_edit.render import render_array, render_paletted
from data.shapes_edit.scene import random_scene
from data.transforms import ImageTransform
from inference.benchmark.converters.csv_tasks import convert_csv_tasks
from inference.benchmark.schema import load_benchmark

BLUE, RED = (0, 0, 255), (255, 0, 0)


def encoded(image: Image.Image, image_format: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **params)
    return buffer.getvalue()


def phone_photo(orientation: int) -> bytes:
    """A 40x20 JPEG as a camera stores it (left quarter blue, rest red) with an EXIF orientation tag."""
    stored = Image.new("RGB", (40, 20), RED)
    stored.paste(BLUE, (0, 0, 10, 20))
    exif = Image.Exif()
    exif[Base.Orientation] = orientation
    return encoded(stored, "JPEG", exif=exif, quality=95)


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return max(abs(a - b) for a, b in zip(pixel, colour)) <= 8


# orientation -> (shown size, a pixel that must be blue, a pixel that must be red); the stored image's blue left
# quarter is shown at the top (6: rotate 90 degrees clockwise), bottom (8: counter-clockwise) or right (3: 180).
@pytest.mark.parametrize("orientation, size, blue_at, red_at", [
    (1, (40, 20), (3, 10), (30, 10)),
    (3, (40, 20), (36, 10), (5, 10)),
    (6, (20, 40), (10, 3), (10, 30)),
    (8, (20, 40), (10, 36), (10, 5)),
])
def test_exif_orientation_is_applied_from_bytes_path_and_pil(tmp_path, orientation, size, blue_at, red_at):
    data = phone_photo(orientation)
    (tmp_path / "photo.jpg").write_bytes(data)
    for source in (data, tmp_path / "photo.jpg", str(tmp_path / "photo.jpg"), Image.open(io.BytesIO(data))):
        image = load_image(source)
        assert image.mode == "RGB" and image.size == size
        assert near(image.getpixel(blue_at), BLUE) and near(image.getpixel(red_at), RED)
        assert image.getexif().get(Base.Orientation, 1) == 1  # so a later reader does not turn it again


def test_sixteen_bit_grayscale_png_is_scaled_not_clipped():
    gradient = np.linspace(0, 65535, 64 * 32).round().astype(np.uint16).reshape(32, 64)
    data = encoded(Image.fromarray(gradient))
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    pixels = np.asarray(load_image(data))
    assert pixels.shape == (32, 64, 3) and (pixels == 255).mean() < 0.01  # PIL's own convert: 99.6% white
    assert np.array_equal(pixels[..., 0], np.rint(gradient / 257).astype(np.uint8))
    assert np.array_equal(pixels[..., 0], pixels[..., 2])


def test_big_endian_sixteen_bit_is_scaled_like_little_endian():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    big = Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes())
    assert np.asarray(to_rgb(big))[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.mark.parametrize("values, dtype, expected", [
    ([0, 1000, 32896, 65535], np.int32, [0, 4, 128, 255]),  # 16-bit data widened to I: white is 65535
    ([0, 100, 200, 255], np.int32, [0, 100, 200, 255]),  # 8-bit data in I: unchanged
    ([-5, 0, 70000, 140000], np.int32, [0, 0, 128, 255]),  # beyond 16 bits: [0, max]
    ([0.0, 0.25, 0.5, 1.0], np.float32, [0, 64, 128, 255]),  # float in [0, 1]
    ([0.0, 10.0, 128.0, 255.0], np.float32, [0, 10, 128, 255]),  # float on the 8-bit scale
])
def test_int_and_float_images_from_tiff_files(values, dtype, expected):
    image = Image.fromarray(np.array([values], dtype=dtype))
    data = encoded(image, "TIFF")
    assert Image.open(io.BytesIO(data)).mode == image.mode
    assert np.asarray(load_image(data))[0, :, 1].tolist() == expected


def test_transparency_is_composited_on_white():
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    palette.putpixel((1, 0), 1)
    palette.info["transparency"] = 1  # palette entry 1 (green) is transparent
    assert [load_image(encoded(palette)).getpixel((x, 0)) for x in range(3)] == [RED, (255, 255, 255), RED]
    gray_alpha = Image.new("LA", (1, 1), (0, 64))  # black at 25% opacity
    assert load_image(encoded(gray_alpha)).getpixel((0, 0)) == (191, 191, 191)
    rgba = Image.new("RGBA", (1, 1), (0, 0, 255, 255))
    assert load_image(encoded(rgba)).getpixel((0, 0)) == BLUE


def test_cmyk_jpeg_and_ycbcr_become_rgb():
    cmyk = load_image(encoded(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95))
    assert cmyk.mode == "RGB" and near(cmyk.getpixel((4, 4)), RED)
    ycbcr = Image.new("YCbCr", (2, 2), (76, 85, 255))  # BT.601 red
    assert near(to_rgb(ycbcr).getpixel((0, 0)), RED)


def test_rgb_is_read_bit_exactly_and_the_callers_image_is_left_alone():
    scene = random_scene(random.Random(3))
    rgb = render_array(scene, 128)
    assert np.array_equal(np.asarray(load_image(encoded(Image.fromarray(rgb)))), rgb)
    assert np.array_equal(np.asarray(load_image(encoded(render_paletted(scene, 128)))), rgb)  # ShapesEdit's PNGs
    tagged = Image.open(io.BytesIO(phone_photo(6)))
    load_image(tagged)
    assert tagged.size == (40, 20) and tagged.getexif()[Base.Orientation] == 6


def test_unreadable_inputs_raise_with_a_reason(tmp_path):
    good = encoded(Image.effect_noise((64, 64), 40).convert("RGB"))
    (tmp_path / "empty.png").write_bytes(b"")
    cases = {"missing": tmp_path / "nope.png", "empty": tmp_path / "empty.png", "not_image": b"hello",
             "corrupt": good[: len(good) // 2]}
    for reason, source in cases.items():
        with pytest.raises(ImageLoadError) as caught:
            load_image(source, name="the photo")
        assert caught.value.reason == reason and str(caught.value).startswith("the photo ")


def test_datasets_train_on_the_upright_scaled_image():
    renderer = SampleRenderer(ByteTokenizer(), ImageTransform(64, 32, 16), ImageTransform(56, 28, 14))
    row = demo_record(0, "edit", np.random.default_rng(0), (40, 40))
    row["source_image"] = phone_photo(6)
    row["target_image"] = encoded(Image.fromarray(np.full((32, 64), 32896, dtype=np.uint16)))  # mid gray
    source_vae, _, _, target_vae = renderer.render(row, "ds").segments
    assert source_vae.pixels.shape == (3, 64, 32)  # the 20x40 upright photo, not the 40x20 stored one
    assert float((target_vae.pixels - (128 / 127.5 - 1)).abs().max()) < 1e-6  # mid gray, not +1 (white)
    row["source_image"] = b"\x89PNG\r\n\x1a\n broken"
    with pytest.raises(SampleError, match="corrupt_image"):
        renderer.render(row, "ds")


def test_benchmark_conversion_stores_upright_scaled_sources(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(phone_photo(8))
    Image.fromarray(np.full((8, 8), 65535 // 3, dtype=np.uint16)).save(tmp_path / "scan.png")
    with open(tmp_path / "tasks.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([["image", "instruction"], ["photo.jpg", "make it green"], ["scan.png", "add colour"]])
    assert convert_csv_tasks([tmp_path / "tasks.csv"], tmp_path / "bench").written == 2
    bench = load_benchmark(tmp_path / "bench")
    photo, scan = (bench.open_source(s) for s in bench.samples)
    assert photo.size == (20, 40) and near(photo.getpixel((10, 36)), BLUE)
    assert scan.getpixel((0, 0)) == (85, 85, 85)
