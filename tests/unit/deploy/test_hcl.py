"""The HCL writer aligns like ``terraform fmt`` and escapes interpolation."""

from __future__ import annotations

from gpufleet.deploy.hcl import BLANK, Attr, Raw, block, quote, render_file


def test_alignment_runs_end_at_blank_lines_blocks_and_multi_line_values() -> None:
    text = render_file(
        [
            block(
                "resource",
                "aws_x",
                "y",
                body=[
                    Attr("a", 1),
                    Attr("long_name", "v"),
                    BLANK,
                    Attr("b", True),
                    Attr("tags", {"k": "v", "key.with/dots": Raw("var.x")}),
                    Attr("c", ["a", "b"]),
                    block("inner", body=[Attr("z", 2.5)]),
                ],
            )
        ]
    )
    assert text == (
        'resource "aws_x" "y" {\n'
        "  a         = 1\n"
        '  long_name = "v"\n'
        "\n"
        "  b = true\n"
        "  tags = {\n"
        '    k               = "v"\n'
        '    "key.with/dots" = var.x\n'
        "  }\n"
        '  c = ["a", "b"]\n'
        "  inner {\n"
        "    z = 2.5\n"
        "  }\n"
        "}\n"
    )


def test_strings_escape_quotes_and_template_sequences() -> None:
    assert quote('say "${x}" %{y}\\') == '"say \\"$${x}\\" %%{y}\\\\"'
