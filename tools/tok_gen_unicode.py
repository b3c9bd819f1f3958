#!/usr/bin/env python3
"""tok_gen_unicode.py — generates src/tokenizer/tok_unicode_data.c: the Unicode facts of Hugging Face
`tokenizers` (the version installed here) where they differ from, or must not depend on, utf8proc.

HF's components use different Unicode versions: the Split regexes run on Oniguruma (\\p{L}, \\p{N}:
Unicode 16 in tokenizers 0.23), Digits uses Rust's char::is_numeric, StripAccents and the NFC/NFD
normalizers use the `unicode-normalization-alignments` tables (an older Unicode), Lowercase uses Rust's
char::to_lowercase. utf8proc 2.8 (Debian 12) is Unicode 15. So this script probes HF for every code
point and writes:
  * tok_uni_letter / tok_uni_number / tok_uni_numeric / tok_uni_word / tok_uni_mark: complete range
    lists of HF's \\p{L}, \\p{N}, is_numeric (Digits), Rust regex \\w (single_word) and combining marks
    (StripAccents), code points >= 0x80;
  * tok_uni_norm_inert / tok_uni_norm_inert_compat: code points HF's NFC/NFD (resp. NFKC/NFKD) leave alone
    (no decomposition, combining class 0, no composition) but utf8proc does not — text is cut at them
    before utf8proc normalizes;
  * tok_uni_lower: code points whose HF lowercase differs from utf8proc_tolower (with HF's result).
Needs the Python `tokenizers` package and libutf8proc.so.2. Run: python3 tools/tok_gen_unicode.py
"""
import ctypes
import os
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, models, normalizers, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "src", "tokenizer", "tok_unicode_data.c")

U = ctypes.CDLL("libutf8proc.so.2")
U.utf8proc_category.restype = ctypes.c_int
U.utf8proc_tolower.restype = ctypes.c_int
U.utf8proc_version.restype = ctypes.c_char_p
U.utf8proc_unicode_version.restype = ctypes.c_char_p


class Prop(ctypes.Structure):
    _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]


U.utf8proc_get_property.restype = ctypes.POINTER(Prop)
for fn in ("utf8proc_NFC", "utf8proc_NFD", "utf8proc_NFKC", "utf8proc_NFKD"):
    getattr(U, fn).restype = ctypes.c_void_p
LIBC = ctypes.CDLL(None)


def u_form(fn, s):
    p = getattr(U, fn)(s.encode("utf-8") + b"\0")
    r = ctypes.string_at(p).decode("utf-8")
    LIBC.free(ctypes.c_void_p(p))
    return r


CPS = [c for c in range(0x80, 0x110000) if not (0xD800 <= c <= 0xDFFF)]


def hf_regex_set(pattern):
    split = pre_tokenizers.Split(Regex(pattern), "removed")
    return {c for c in CPS if not split.pre_tokenize_str(chr(c))}


def hf_word_chars():
    """Rust regex \\w as HF's single_word check sees it: X is a word character when "X@" does not
    match a single_word added token "@"."""
    tok = Tokenizer(models.BPE())
    tok.add_tokens([AddedToken("@", single_word=True, normalized=False)])
    texts = [chr(c) + "@" for c in CPS]
    encs = tok.encode_batch(texts, add_special_tokens=False)
    return {c for c, e in zip(CPS, encs) if not e.ids}


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def inert_exceptions(hf_nfd, u_nfd, u_nfc):
    """Code points HF's normalizer leaves alone but utf8proc does not."""
    mark240 = "\u0345"  # combining class 240: any known mark with a smaller class moves before it
    out = set()
    hf_decomp_chars = set()
    for c in CPS:
        ch = chr(c)
        d_hf = hf_nfd.normalize_str(ch)
        if d_hf != ch:
            hf_decomp_chars.update(d_hf)
        d_u = u_form(u_nfd, ch)
        ccc = U.utf8proc_get_property(c).contents.combining_class
        if d_u != ch and d_hf == ch:
            out.add(c)
            # the pieces of a composition HF does not know must not meet inside utf8proc either
            if len(d_u) == 2 and u_form(u_nfc, d_u) != d_u and hf_nfd.normalize_str(d_u) == d_u:
                out.update(ord(x) for x in d_u)
        elif 0 < ccc < 240 and d_u == ch:
            probe = "a" + mark240 + ch
            if hf_nfd.normalize_str(probe) == probe:
                out.add(c)
    bad = [c for c in out if chr(c) in hf_decomp_chars]
    if bad:
        sys.exit("inert candidates used by HF decompositions: %s" % [hex(c) for c in bad])
    return out


def c_ranges(name, rs):
    lines = ["const uint32_t %s[][2] = {" % name]
    row = []
    for a, b in rs:
        row.append("{0x%X, 0x%X}," % (a, b))
        if len(row) == 5:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines.append("};")
    lines.append("const size_t %s_n = sizeof %s / sizeof %s[0];" % (name, name, name))
    return "\n".join(lines)


def c_list(name, cps):
    cps = sorted(cps)
    lines = ["const uint32_t %s[] = {" % name]
    for i in range(0, len(cps), 8):
        lines.append("    " + " ".join("0x%X," % c for c in cps[i:i + 8]))
    if not cps:
        lines.append("    0")
    lines.append("};")
    lines.append("const size_t %s_n = %d;" % (name, len(cps)))
    return "\n".join(lines)


def main():
    letters = hf_regex_set(r"\p{L}")
    numbers = hf_regex_set(r"\p{N}")
    digits = pre_tokenizers.Digits(individual_digits=True)
    numeric = {c for c in CPS if len(digits.pre_tokenize_str("a" + chr(c) + "a")) == 3}
    word = hf_word_chars()
    sa = normalizers.StripAccents()
    marks = {c for c in CPS if sa.normalize_str("a" + chr(c)) == "a"}
    inert = inert_exceptions(normalizers.NFD(), "utf8proc_NFD", "utf8proc_NFC")
    inert_compat = inert_exceptions(normalizers.NFKD(), "utf8proc_NFKD", "utf8proc_NFKC") - inert
    lc = normalizers.Lowercase()
    lower = []
    for c in CPS:
        hf = lc.normalize_str(chr(c))
        u = "i\u0307" if c == 0x130 else chr(U.utf8proc_tolower(c))
        if hf != u:
            if len(hf) != 1:
                sys.exit("multi-character lowercase of U+%04X is not supported by the table" % c)
            lower.append((c, ord(hf)))
    src = [
        "/* tok_unicode_data.c — GENERATED by tools/tok_gen_unicode.py; do not edit.",
        " *",
        " * Unicode facts of Hugging Face tokenizers %s as probed code point by code point (utf8proc %s," % (
            tokenizers.__version__, U.utf8proc_version().decode()),
        " * Unicode %s, at generation time). See tok_unicode.c for how they are used. */" % (
            U.utf8proc_unicode_version().decode()),
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "/* Oniguruma \\p{L} and \\p{N} (the Split regexes), code points >= 0x80 */",
        c_ranges("tok_uni_letter", ranges(letters)),
        c_ranges("tok_uni_number", ranges(numbers)),
        "/* Rust char::is_numeric (Digits pre-tokenizer) */",
        c_ranges("tok_uni_numeric", ranges(numeric)),
        "/* Rust regex \\w (the single_word check of added tokens), code points >= 0x80 */",
        c_ranges("tok_uni_word", ranges(word)),
        "/* combining marks removed by StripAccents */",
        c_ranges("tok_uni_mark", ranges(marks)),
        "/* left alone by HF's NFC/NFD but not by utf8proc */",
        c_list("tok_uni_norm_inert", inert),
        "/* additionally left alone by HF's NFKC/NFKD */",
        c_list("tok_uni_norm_inert_compat", inert_compat),
        "/* HF Lowercase where it differs from utf8proc_tolower: {code point, lowercase} */",
        "const uint32_t tok_uni_lower[][2] = {",
    ]
    for c, l in lower:
        src.append("    {0x%X, 0x%X}," % (c, l))
    if not lower:
        src.append("    {0, 0},")
    src += ["};", "const size_t tok_uni_lower_n = %d;" % len(lower), ""]
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(src))
    print("wrote %s: %d letter ranges, %d number ranges, %d numeric ranges, %d mark ranges, %d inert, %d inert "
          "compat, %d lowercase" % (OUT, len(ranges(letters)), len(ranges(numbers)), len(ranges(numeric)),
                                     len(ranges(marks)), len(inert), len(inert_compat), len(lower)), file=sys.stderr)


if __name__ == "__main__":
    main()
