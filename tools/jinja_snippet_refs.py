#!/usr/bin/env python3
"""Reference renderings of small Jinja snippets by transformers' chat-template environment, for the
interpreter's semantic tests (tests/tasks/test_chat_templates.c): scoping, loops, macros, filters, tests,
methods, whitespace control, Python str()/repr()/json.dumps formatting, Undefined rules, errors.

Each snippet is rendered like a chat template (render_jinja_template) with `messages` and extra
variables; output tests/tasks/chat/snippets.jsonl: {"template", "vars", "text"} or {"error", "error_type"}.
Usage: python3 tools/jinja_snippet_refs.py
"""
import datetime as _dt
import json
import os

from transformers.utils import chat_template_utils as ctu

NOW = 1753000000  # strftime_now's clock (UTC), as in chat_template_refs.py


class FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp(NOW, _dt.timezone.utc).replace(tzinfo=None)


ctu.datetime = FixedDatetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "tasks", "chat", "snippets.jsonl")

M = [{"role": "system", "content": "sys"}, {"role": "user", "content": "Hi there"},
     {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]
D = {"b": 2, "a": 1, "c": [1, 2.5, None, True, "x"], "n": {"k": "v", "e": []}}
ITEMS = [{"name": "b", "v": 3, "on": True}, {"name": "a", "v": 1, "on": False}, {"name": "C", "v": 2, "on": True}]

SNIPPETS = [
    # output of values
    ("{{ 1 }} {{ 1.0 }} {{ 1.5e-7 }} {{ 1e16 }} {{ 123456789.0 }} {{ -0.0 }} {{ 0.1 + 0.2 }}", {}),
    ("{{ none }} {{ true }} {{ False }} {{ [1, 'a', none, true, 2.0] }} {{ {'x': 1, 'y': [\"q'\"]} }}", {}),
    ("{{ d }} {{ d.c }} {{ d['n'] }} {{ (1, 2) }} {{ (1,) }} {{ () }}", {"d": D}),
    ("{{ 'it\\'s' }}|{{ \"say \\\"hi\\\"\" }}|{{ 'tab\\there' }}|{{ 'a\\nb' }}|{{ '\\u00e9\\x41' }}", {}),
    ("{{ ['it\\'s', 'a\"b', 'c\\nd', 'both \\' \"'] }}", {}),
    # arithmetic
    ("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}", {}),
    ("{{ 'ab' * 3 }} {{ [1] * 2 }} {{ 'a' + 'b' }} {{ [1] + [2] }} {{ 1 + 2.5 }} {{ true + 1 }} {{ 'x' ~ 1 ~ none ~ [1] }}", {}),
    ("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 == 1.0 }} {{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}", {}),
    ("{{ x if x else 'none' }} [{{ 'yes' if false }}] {{ 'a' if 0 else 'b' if 1 else 'c' }} {{ 0 or 'alt' }} {{ 1 and 'both' }} {{ not 0 }}", {"x": 0}),
    # undefined
    ("[{{ missing }}] {{ missing is defined }} {{ missing is undefined }} {{ (missing or 'fb') }} {{ missing | default('dflt') }} {{ none | default('dflt') }} {{ '' | default('dflt', true) }}", {}),
    ("{{ d.nothere }}|{{ d.nothere is defined }}|{{ d['nothere'] | length }}|{% for x in missing %}x{% endfor %}|{{ missing | list }}", {"d": D}),
    ("{{ missing.attr }}", {}),
    ("{{ missing + 1 }}", {}),
    ("{{ none.attr }}|{{ 5.attr }}|{{ 'str'.nothing }}", {}),
    ("{{ d['items'] }}", {"d": {"items": "key wins"}}),
    # scoping
    ("{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}[{{ x }}]{% endfor %}{{ x }}", {}),
    ("{% set ns = namespace(x=1, y='a') %}{% for i in [1, 2] %}{% set ns.x = ns.x + i %}{% endfor %}{{ ns.x }}{{ ns.y }}", {}),
    ("{% for i in [1, 2] %}{% if i == 2 %}{{ seen }}{% endif %}{% set seen = i %}{% endfor %}|{{ seen }}", {}),
    ("{% if true %}{% set y = 5 %}{% endif %}{{ y }}", {}),
    ("{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", {}),
    ("{% set messages = messages[1:] %}{{ messages | length }}{{ messages[0].role }}", {}),
    ("{% set ns = namespace() %}{% set ns._x = 1 %}", {}),
    # loops
    ("{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}),
    ("{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }}:{{ m.content }} {% endfor %}", {}),
    ("{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }} {{ loop.cycle('a', 'b') }},{% endfor %}", {}),
    ("{% for x in [] %}x{% else %}empty{% endfor %}{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for c in 'hé' %}[{{ c }}]{% endfor %}", {"d": D}),
    ("{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("{% for x in 5 %}{% endfor %}", {}),
    ("{% for x in none %}{% endfor %}", {}),
    # macros
    ("{% macro m(a, b=2, c='c') %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }} {{ m(1, 3) }} {{ m(1, c='z') }} {{ m() }}", {}),
    ("{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1) | int }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}),
    ("{% macro m() %}x{% endmacro %}{{ m(1, 2) }}", {}),
    ("{% set x = 'outer' %}{% macro m() %}{{ x }}{% endmacro %}{{ m() }}", {}),
    ("{%- macro t(v) -%}{%- if v is mapping -%}{ {%- for k, x in v.items() -%}{{ k }}: {{ t(x) }}{{ ', ' if not loop.last }}{%- endfor -%} }{%- else -%}{{ v }}{%- endif -%}{%- endmacro -%}{{ t(d) }}", {"d": D}),
    # set blocks / filter blocks
    ("{% set s %}  Block {{ 1 }}  {% endset %}[{{ s }}][{{ s | trim }}]{% set u | upper %}up{% endset %}{{ u }}{% filter upper %}shout {{ 'x' }}{% endfilter %}", {}),
    # filters
    ("{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ d | tojson(sort_keys=true) }}|{{ 'é\"\\n' | tojson }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ [] | tojson(indent=2) }}", {"d": D}),
    ("{{ {'a': 1.0, 'b': 1e-7, 'c': 10000000000000000.0, 'd': -2} | tojson }}|{{ d | tojson(separators=(',', ':')) }}", {"d": D}),
    ("[{{ '  x \\n' | trim }}][{{ 'xxhixx' | trim('x') }}][{{ ' a ' | length }}][{{ d | length }}][{{ [1, 2] | count }}]", {"d": D}),
    ("{{ d | items | list }} {{ d | dictsort }} {{ d | dictsort(by='value', reverse=true) if false else '' }}", {"d": {"b": 2, "a": 1, "C": 3}}),
    ("{{ items | map(attribute='name') | join(', ') }}|{{ items | selectattr('on') | map(attribute='v') | list }}|{{ items | rejectattr('on') | list | length }}", {"items": ITEMS}),
    ("{{ items | selectattr('v', 'gt', 1) | map(attribute='name') | join }}|{{ items | selectattr('name', 'equalto', 'a') | first }}|{{ [1, 2, 3, 4] | select('odd') | list }}|{{ [1, 2, 3, 4] | reject('even') | list }}", {"items": ITEMS}),
    ("{{ items | sort(attribute='v') | map(attribute='name') | join }}|{{ items | sort(attribute='name') | map(attribute='name') | join }}|{{ ['b', 'A', 'c'] | sort }}|{{ ['b', 'A', 'c'] | sort(case_sensitive=true) }}|{{ [3, 1, 2] | sort(reverse=true) }}", {"items": ITEMS}),
    ("{{ [1, 2, 1, 'a', 'A'] | unique | list }}|{{ [3, 1, 2] | min }}{{ [3, 1, 2] | max }}|{{ [1, 2, 3] | sum }}|{{ items | sum(attribute='v') }}|{{ [1, 2, 3, 4, 5] | batch(2) | list }}", {"items": ITEMS}),
    ("{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}{{ 'abc' | first }}{{ [1, 2, 3] | reverse | list }}{{ 'abc' | reverse }}{{ 'héllo' | list }}|{{ [] | first }}|", {}),
    ("{{ 'hello world' | upper }} {{ 'HeLLo' | lower }} {{ 'hello wORLD-x(y' | title }} {{ 'hello WORLD' | capitalize }} {{ 'aXbXc' | replace('X', '-') }} {{ 'aaa' | replace('a', 'b', 2) }}", {}),
    ("{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2 | float }} {{ 2.567 | round(2) }} {{ 2.5 | round }} {{ 3.5 | round }} {{ -3 | abs }}", {}),
    ("{{ 12 | string }}{{ [1] | string }}{{ none | string }}|{{ 'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(3, blank=true) }}|{{ 'x' | center(5) }}|{{ 'two words here' | wordcount }}", {}),
    ("{{ '<b>&\"x\\'' | e }} {{ '<i>' | safe }} {{ '<b>' | safe + '<i>' }} {{ '<x>' ~ ('<y>' | safe) }} {{ items | map('string') | list | length }}", {"items": ITEMS}),
    ("{{ items | map(attribute='missing', default='-') | join }} {{ items | join(',', attribute='name') }} {{ [1, none, 'a'] | join('|') }}", {"items": ITEMS}),
    ("{{ 'x' | nofilter }}", {}),
    ("{% if false %}{{ 'x' | nofilter }}{% endif %}ok", {}),
    # tests
    ("{{ 1 is number }}{{ true is number }}{{ 1 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ 'a' is string }}{{ d is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ d is sequence }}{{ none is none }}{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}", {"d": D}),
    ("{{ 1 is eq 1 }}{{ 1 is equalto 2 }}{{ 2 is gt 1 }}{{ 2 is ge 3 }}{{ 'a' is in 'abc' }}{{ 2 is in [1, 2] }}{{ none is sameas none }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'upper' is filter }}{{ 'defined' is test }}{{ m is callable }}{{ range is callable }}", {"m": 1}),
    ("{{ messages[0] is not none and messages[0].role is string }}{{ x is not defined }}{{ tools is none }}{{ tools is defined }}", {}),
    # methods
    ("{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('x', 'lo')) }}{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ '  a b  '.rsplit(None, 1) }}", {}),
    ("[{{ '  x  '.strip() }}][{{ '--x--'.strip('-') }}][{{ '  x  '.lstrip() }}][{{ '  x  '.rstrip() }}][{{ 'xay'.lstrip('x') }}][{{ 'a\\n'.rstrip('\\n') }}]", {}),
    ("{{ 'aXa'.replace('a', 'b') }} {{ 'Ab'.lower() }}{{ 'Ab'.upper() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.rfind('c') }} {{ 'abc'.find('z') }} {{ 'aaa'.count('a') }} {{ ','.join(['x', 'y']) }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ '12'.isdigit() }}{{ 'ab'.isalpha() }}{{ ' '.isspace() }}", {}),
    ("{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'def') }} {{ d.keys() | list }} {{ d.values() | list | length }} {{ [1, 2, 3].index(2) }} {{ [1, 1].count(1) }}", {"d": D}),
    ("{{ messages[-1].content }} {{ messages[1:3] | map(attribute='role') | list }} {{ messages[::-1][0].role }} {{ 'héllo'[1:3] }} {{ 'hello'[::-1] }} {{ 'hello'[-2:] }} {{ [1, 2, 3, 4, 5][::2] }} {{ [1, 2, 3][5:] }} {{ 'abc'[1] }} {{ [1, 2][5] }}|", {}),
    # globals
    ("{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b='x') }} {{ namespace(a=1).a }} {{ strftime_now('%Y-%m-%d %d %b %Y') }}", {}),
    ("{{ raise_exception('Custom refusal: ' ~ messages[0].role) }}", {}),
    ("{{ range(1000000) | length }}", {}),
    # whitespace control
    ("a  {%- if true -%}  b  {%- endif -%}  c\n  {% if true %}\n    d\n  {% endif %}\ne {# comment #}\n  {# c2 #}  f\n{%+ if true %}g{% endif %}\n{{- ' h ' -}}\n i", {}),
    ("line1\n    {% for x in [1, 2] %}\n    item {{ x }}\n    {% endfor %}\nend\n\t{%- if true %} tab{% endif %}\n{% raw %}{{ not evaluated }} {% if %}{% endraw %}\n", {}),
    ("{{ 'a' }}\n{{ 'b' }}\n\n{% if true -%}\n\n  x\n{%- endif %}\n", {}),
    ("text{#- trims before #}  after\n{#+ keeps #}\n  {%- set x = 1 +%}\nnext", {}),
    ("\r\nwindows\r\nline\r\n{% if true %}\r\nx\r\n{% endif %}\r\n", {}),
    # syntax errors
    ("{% if x %}unclosed", {}),
    ("{{ 1 + }}", {}),
    ("{% for %}{% endfor %}", {}),
    ("{% endif %}", {}),
    ("{{ 'unterminated }}", {}),
    ("{% include 'x.html' %}", {}),
    ("{{ a.b(1, 2, c=3 }}", {}),
]


def main():
    n = 0
    with open(OUT, "w", encoding="utf-8") as f:
        for tpl, vs in SNIPPETS:
            kwargs = dict(vs)
            rec = {"template": tpl, "messages": M, "vars": vs, "now": NOW}
            try:
                out, _ = ctu.render_jinja_template(conversations=[M], chat_template=tpl, **kwargs)
                rec["text"] = out[0]
            except Exception as e:  # noqa: BLE001
                rec["error"] = str(e)
                rec["error_type"] = type(e).__name__
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    print(f"{n} snippets")


if __name__ == "__main__":
    main()
