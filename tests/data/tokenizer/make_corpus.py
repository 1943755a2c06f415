#!/usr/bin/env python3
"""Writes corpus.jsonl, the tokenizer test corpus: one JSON object per line, {"text": str} or,
for byte strings that are not valid UTF-8, {"hex": str}, each with a "kind". Hand-written cases
(code, prose, CJK and other scripts, emoji, whitespace runs, digits, contractions, special and
added tokens, non-NFC text, invalid UTF-8) plus seeded random mixtures of them, so the file is
the same on every run. Run from anywhere: python3 tests/data/tokenizer/make_corpus.py
"""
import json
import os
import random
import unicodedata

CODE = [
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "#include <stdio.h>\n\nint main(void)\n{\n    printf(\"hello, world\\n\");\n    return 0;\n}\n",
    "const add = (a, b) => a + b;\nconsole.log(`sum: ${add(2, 3)}`);",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n    println!(\"{:?}\", v);\n}",
    "<div class=\"box\" id='main'>\n  <p>Text &amp; more &lt;tags&gt;</p>\n</div>",
    "{\"name\": \"rosetta\", \"version\": [0, 1, 0], \"ok\": true, \"nested\": {\"k\": null}}",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'A%' ORDER BY id DESC;",
    "#!/bin/sh\nset -eu\nfor f in *.txt; do wc -l \"$f\"; done | sort -n > out.log 2>&1",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares of evens",
    "    \n\n    return {'a': 1, \"b\": [2, 3]}\r\n",
    "if (ptr != NULL && *ptr == '\\0') { ptr++; } else if (x <= -1) { x >>= 2; }",
    "import numpy as np\narr = np.zeros((3, 4), dtype=np.float32)\nprint(arr.shape)",
    "class Foo(Bar):\n    \"\"\"Docstring.\"\"\"\n\n    def __init__(self, *args, **kwargs):\n        super().__init__(*args, **kwargs)\n",
    "a+=1;b-=2;c*=3;d/=4;e%=5;f&=6;g|=7;h^=8;i<<=9;j>>=10;k**=11;l//=12",
    "std::vector<std::pair<int,std::string>> v{{1,\"a\"},{2,\"b\"}};",
    "// TODO-like comment with URL https://example.com/path?q=1&r=two#frag",
    "$ cat /etc/hostname && echo $((1 + 2)) && ls -la ~/..",
    "\t\tindented with tabs\n\t\t\tand more\n",
    "matrix = [[1, 2, 3],\n          [4, 5, 6]]",
    "λx.λy.x + y  -- lambda calculus",
    "@decorator\ndef f(): pass\n\n\n\nprint(f.__name__)",
    "<?php echo $var['key']; ?>",
    "print('It\\'s a \"quote\" test')",
    "0xDEADBEEF 0b1010 0o755 1e-9 3.14f 42u 1_000_000",
]

PROSE = [
    "Hello world",
    " Hello world",
    "Hello, world!",
    "Hello",
    "def",
    "2+2=",
    "user\n",
    "ied 4 ½ months",
    "Führer",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you'll see they're right; we've done what I'd said.",
    "DON'T SHOUT! I'M NOT DEAF. THEY'LL HEAR YOU'RE HERE.",
    "It's John's book, isn't it? 'Tis the season.",
    "He said: \"well...\" -- and then -- nothing.",
    "What is 2+2? Answer with just the number.",
    "Mr. Smith paid $1,234.56 for 3 items on 2024-01-15 at 10:30am.",
    "e.g. i.e. etc. vs. a.m. p.m.",
    "Visit https://www.example.org/ or mail someone@example.com.",
    "A sentence with  two spaces  and   three.",
    "Ellipsis… em—dash – en-dash “curly quotes” ‘single’ «guillemets»",
    "naïve café résumé coöperate façade jalapeño",
    "The year 1984 and 2001: A Space Odyssey (1968).",
    "(parenthesized) [bracketed] {braced} <angled>",
    "!!!???...,,,;;;:::",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz",
    "Once upon a time, there was a tokenizer that split text into pieces.",
]

SCRIPTS = [
    "你好，世界！今天天气很好。",
    "我爱自然语言处理和机器学习。",
    "日本語のテキスト：ひらがな、カタカナ、漢字。",
    "東京は日本の首都です。",
    "한국어 텍스트입니다. 안녕하세요!",
    "Привет, мир! Как дела?",
    "Γειά σου Κόσμε! αβγδε ΑΒΓΔΕ",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Xin chào thế giới, Tiếng Việt có dấu.",
    "Zażółć gęślą jaźń. Čeština: příliš žluťoučký kůň.",
    "ქართული ენა",
    "Հայերեն լեզու",
    "ᚠᚢᚦᚨᚱᚲ runes",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕄𝕒𝕥𝕙 𝐁𝐨𝐥𝐝",
    "ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３",
    "ﬁ ﬂ ﬀ ligatures",
    "混合 mixed テキスト text 한국 ok",
    "中文，标点。符号！“引号”",
    "𠀀𠀁𠀂 extension-B ideographs",
    "Ⅻ Ⅳ ⅷ roman numerals",
    "١٢٣٤٥ Arabic-Indic digits ۱۲۳",
    "२०२४ Devanagari digits",
    "x² y³ z¹⁰ H₂O ½ ¾ ⅓",
]

EMOJI = [
    "😀", "😀😃😄", "👍🏽 thumbs", "👨‍👩‍👧‍👦 family", "🇫🇷🇯🇵 flags", "❤️ heart", "🏳️‍🌈",
    "I ❤ 🍕 and 🍣!", "emoji at end 🎉", "🎉 emoji at start", "a😀b😀c", "🤖🧠💻",
    "⌚⌛⏩", "✅ done ❌ failed ⚠️ warning",
]

WHITESPACE = [
    " ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", "\r\n", "\r\n\r\n", "\r",
    " \n", "\n ", " \n ", "  \n  ", "a  ", "  a", "a\n\n\nb", "a \n b", "a\t\tb",
    "line1\nline2\r\nline3\rline4", "trailing spaces   ", "   leading spaces",
    "\u00a0nbsp\u00a0", "ideographic\u3000space", "line\u2028separator", "next\u0085line",
    "mongolian\u180evowel", "zero\u200bwidth", "thin\u2009space", "\u3000\u3000",
    " \t \n \t ", "x" + " " * 17 + "y", "\n" * 12, " " * 40, "\t" * 9 + "end",
    "a \u00a0 b", "\v vertical \f formfeed",
]

DIGITS = [
    "333", "0", "12345", "3.14159", "1,000,000", "-42", "+7", "1e10", "007", "2024",
    "123abc456", "abc123", "v1.2.3", "192.168.0.1", "10:30:59", "50%", "$100", "#1",
    "1/2", "3-4", "99 bottles", "0123456789" * 3,
]

CONTRACTIONS = [
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D",
    "don't", "won't", "can't", "shouldn't've", "y'all", "o'clock", "rock 'n' roll",
    "''", "'", "it's'", "'quoted'", "he's's", "'ſ", "x'ſt",
]

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_end|><|im_end|>",
    "a<|im_end|>b",
    " <|im_end|> ",
    "<|im_start",
    "im_end|>",
    "<|IM_END|>",
    "< |im_end| >",
    "<|endoftext|>text<|endoftext|>",
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    "<tool_call></tool_call>",
    "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
    "<|repo_name|>rosetta<|file_sep|>main.c",
    "<|object_ref_start|>x<|object_ref_end|><|box_start|>(1,2)<|box_end|>",
    "<|vision_start|><|image_pad|><|vision_end|>",
    "<|im_start|><|im_start|>",
    "<|<|im_end|>|>",
    "<<|im_end|>>",
    "text<|im_start|>",
    "[PAD151935]",
    "<|im_end|>\n\n",
]

NON_NFC = [
    "e\u0301",               # e + combining acute (NFC: é)
    "cafe\u0301 au lait",
    "A\u030a",               # A + ring (NFC: Å)
    "\u212b",                # Angstrom sign (NFC: Å)
    "\u1100\u1161\u11a8",    # Hangul jamo (NFC: 각)
    "o\u0308\u0304",         # o + diaeresis + macron
    "\u0041\u0301\u0327",    # A + acute + cedilla (reordering)
    "\ufb01 ligature stays", # NFC keeps ligatures
    "Ω\u2126",               # Ohm sign (NFC: Ω)
    "n\u0303o",
]

# byte strings that are not valid UTF-8 (read as U+FFFD, maximal subparts)
INVALID = [
    b"\x80", b"\xff", b"abc\x80def", b"\xc3", b"caf\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(",
    b"\xe2\x28\xa1", b"\xf0\x9f\x98", b"\xf0\x9f\x98 end", b"\xf0\x28\x8c\x28", b"\xc0\x80",
    b"\xc1\xbf", b"\xe0\x80\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
    b"\xfe\xfe\xff\xff", b"good \xff bad \x80 good", b"\x80\x80\x80", b"<|im_end|>\xff",
    b"\xe4\xbd\xa0\xe5\xa5", b"tail\xf0",
]


def mix(rng, pools):
    parts = []
    for _ in range(rng.randint(2, 6)):
        pool = rng.choice(pools)
        s = rng.choice(pool)
        if rng.random() < 0.3 and len(s) > 3:
            a = rng.randrange(len(s))
            s = s[a:a + rng.randint(1, 12)]
        parts.append(s)
        if rng.random() < 0.5:
            parts.append(rng.choice([" ", "\n", "  ", "\t", "", ", ", ". "]))
    return "".join(parts)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    entries = []
    for kind, pool in (("code", CODE), ("prose", PROSE), ("script", SCRIPTS), ("emoji", EMOJI),
                       ("whitespace", WHITESPACE), ("digits", DIGITS),
                       ("contraction", CONTRACTIONS), ("special", SPECIAL), ("non-nfc", NON_NFC)):
        for s in pool:
            entries.append({"kind": kind, "text": s})
    for b in INVALID:
        entries.append({"kind": "invalid-utf8", "hex": b.hex()})
    entries.append({"kind": "edge", "text": ""})
    for c in range(0x20, 0x7f):
        entries.append({"kind": "ascii", "text": chr(c)})
    entries.append({"kind": "edge", "text": "".join(chr(c) for c in range(1, 0x20))})
    entries.append({"kind": "edge", "text": "a" * 1000})
    entries.append({"kind": "edge", "text": " " * 500 + "x"})
    entries.append({"kind": "edge", "text": "\n" * 300})
    entries.append({"kind": "edge", "text": "ab" * 400})
    entries.append({"kind": "edge", "text": "😀" * 100})
    entries.append({"kind": "edge", "text": "Supercalifragilisticexpialidocious" * 10})
    rng = random.Random(20240601)
    pools = [CODE, PROSE, SCRIPTS, EMOJI, WHITESPACE, DIGITS, CONTRACTIONS, SPECIAL]
    for _ in range(220):
        entries.append({"kind": "random", "text": mix(rng, pools)})
    for _ in range(20):  # random byte strings mixing valid text and stray bytes
        s = mix(rng, pools).encode("utf-8")
        i = rng.randrange(len(s) + 1)
        s = s[:i] + bytes([rng.choice([0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xff])]) + s[i:]
        try:
            s.decode("utf-8")
            entries.append({"kind": "random", "text": s.decode("utf-8")})
        except UnicodeDecodeError:
            entries.append({"kind": "random-invalid-utf8", "hex": s.hex()})
    for e in entries:
        if "text" in e and unicodedata.normalize("NFC", e["text"]) != e["text"]:
            e["not_nfc"] = True
    with open(os.path.join(here, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    print("wrote %d entries" % len(entries))


if __name__ == "__main__":
    main()
