#!/usr/bin/env python3
"""Reference renderings of real chat templates by transformers, for tests/tasks/test_chat_templates.c.

Every chat template under ../shared/models (chat_template*.jinja, and tokenizer_config.json's
chat_template) is rendered with each conversation of CONVERSATIONS exactly as
tokenizer.apply_chat_template does it (transformers' _normalize_chat_messages + render_jinja_template
with the special tokens map + kwargs), with strftime_now's clock fixed at NOW (UTC). Output:
tests/tasks/chat/conversations.json (the inputs) and tests/tasks/chat/refs.jsonl (one line per
template x conversation: the text, or the error transformers raised).

Usage: pip install transformers jinja2; python3 tools/chat_template_refs.py [shared_dir]
"""
import datetime as _dt
import glob
import json
import os
import sys

import jinja2
import transformers
from transformers.utils import chat_template_utils as ctu

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "tasks", "chat")
NOW = 1753000000  # 2025-07-20 08:26:40 UTC


class FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return _dt.datetime.fromtimestamp(NOW, _dt.timezone.utc).replace(tzinfo=None)


ctu.datetime = FixedDatetime

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"}},
        "required": ["city"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search_docs", "description": "Search the knowledge base and return passages",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string", "description": "What to look for"},
        "top_k": {"type": "integer", "description": "How many passages", "default": 5},
        "filters": {"type": "object", "description": "Metadata filters", "properties": {
            "year": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}},
        "exact": {"type": "boolean"}, "score": {"type": "number"}},
        "required": ["query"]}}}
NOARGS = {"type": "function", "function": {"name": "get_time", "description": "Current time",
                                            "parameters": {"type": "object", "properties": {}}}}

CALL_W = {"id": "abc123DEF", "type": "function",
          "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
CALL_S = {"id": "xyz789GHI", "type": "function",
          "function": {"name": "search_docs", "arguments": {"query": "ragd \"batch\" invariance", "top_k": 3}}}
CALL_W_STR = {"id": "Qr5tY7uI9", "type": "function",
              "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}

U = lambda c: {"role": "user", "content": c}
A = lambda c: {"role": "assistant", "content": c}
S = lambda c: {"role": "system", "content": c}


def TOOL(c, i="abc123DEF", name="get_weather"):
    return {"role": "tool", "tool_call_id": i, "name": name, "content": c}


def case(name, messages, tools=None, agp=True, **kwargs):
    return {"name": name, "messages": messages, "tools": tools, "add_generation_prompt": agp, "kwargs": kwargs}


CONVERSATIONS = [
    case("user", [U("Hello!")]),
    case("user_no_gen_prompt", [U("Hello!")], agp=False),
    case("system_user", [S("You are a terse assistant."), U("What is RAG?")]),
    case("multi_turn", [U("Hi"), A("Hello! How can I help?"), U("Tell me a joke.")]),
    case("system_multi_turn", [S("Be brief."), U("2+2?"), A("4"), U("And 3+3?"), A("6"), U("Thanks")]),
    case("ends_with_assistant", [U("Hi"), A("Hello there.")], agp=False),
    case("unicode", [U("héllo wörld — 世界 🚀 \"quotes\" 'single' back\\slash\ttab")]),
    case("whitespace", [S("  padded system  \n"), U("\n\n  spaced question?  \n"), A(" spaced answer \n"), U("ok")]),
    case("template_like_text", [U("{{ not_a_var }} {% if %} <|im_end|> <|eot_id|> [INST]")]),
    case("empty_content", [U("")]),
    case("tools_user", [U("What's the weather in Paris?")], tools=[WEATHER]),
    case("tools_system_user", [S("You can call tools."), U("Find docs about batching.")], tools=[WEATHER, SEARCH]),
    case("tools_noargs", [U("What time is it?")], tools=[NOARGS]),
    case("tool_call_null_content", [U("Weather in Paris?"), {"role": "assistant", "content": None, "tool_calls": [CALL_W]},
                                    TOOL("{\"temperature\": 21, \"sky\": \"clear\"}")], tools=[WEATHER]),
    case("tool_call_empty_content", [U("Weather in Paris?"), {"role": "assistant", "content": "", "tool_calls": [CALL_W]},
                                     TOOL("21 degrees and clear")], tools=[WEATHER]),
    case("parallel_tool_calls", [S("Use tools when useful."), U("Weather in Paris and docs on batching?"),
                                 {"role": "assistant", "content": None, "tool_calls": [CALL_W, CALL_S]},
                                 TOOL("21C"), TOOL("[{\"text\": \"passage\"}]", "xyz789GHI", "search_docs")],
         tools=[WEATHER, SEARCH]),
    case("tool_loop_then_answer", [U("Weather in Paris?"), {"role": "assistant", "content": None, "tool_calls": [CALL_W]},
                                   TOOL("21C"), A("It is 21°C in Paris."), U("And tomorrow?")], tools=[WEATHER]),
    case("tool_call_string_arguments", [U("Weather in Oslo?"), {"role": "assistant", "content": None, "tool_calls": [CALL_W_STR]},
                                        TOOL("-3C", "Qr5tY7uI9")], tools=[WEATHER]),
    case("tool_result_without_tools", [U("Weather?"), {"role": "assistant", "content": None, "tool_calls": [CALL_W]},
                                       TOOL("21C")]),
    case("reasoning_content", [U("Is 17 prime?"), {"role": "assistant", "content": "Yes.", "reasoning_content": "17 has no divisors."},
                               U("And 21?")]),
    case("thinking_off", [U("Quick answer: capital of France?")], enable_thinking=False),
    case("thinking_on", [S("sys"), U("Think first.")], enable_thinking=True),
    case("system_only", [S("Only a system prompt.")]),
    case("assistant_first", [A("I speak first."), U("ok")]),
    case("two_users", [U("first"), U("second")]),
    case("system_in_middle", [U("a"), A("b"), S("new rules"), U("c")]),
    case("long_history", [x for i in range(6) for x in (U(f"question {i}"), A(f"answer {i}"))] + [U("last")]),
]


def special_tokens(d):
    """the special_tokens_map transformers would pass for this model directory"""
    cfg = os.path.join(d, "tokenizer_config.json")
    out = {}
    if os.path.exists(cfg):
        c = json.load(open(cfg))
        for k in ("bos_token", "eos_token", "unk_token", "pad_token"):
            v = c.get(k)
            if isinstance(v, dict):
                v = v.get("content")
            if isinstance(v, str):
                out[k] = v
        return out
    name = os.path.basename(d)
    if "llama" in name or "hermes" in name or "firefunction" in name or "functionary" in name:
        out = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
        if "deepseek" in name:
            out = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}
    elif "qwen" in name:
        out = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
    elif "gemma" in name:
        out = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
    elif "mistral" in name:
        out = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    elif "granite" in name:
        out = {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>", "pad_token": "<|end_of_text|>"}
    elif "gpt-oss" in name:
        out = {"bos_token": "<|startoftext|>", "eos_token": "<|return|>", "pad_token": "<|endoftext|>"}
    return out


def templates(shared):
    out = []
    for d in sorted(glob.glob(os.path.join(shared, "models", "*"))):
        for f in sorted(glob.glob(os.path.join(d, "chat_template*.jinja"))):
            out.append((os.path.relpath(f, shared), open(f, encoding="utf-8").read(), d))
        cfg = os.path.join(d, "tokenizer_config.json")
        if os.path.exists(cfg):
            ct = json.load(open(cfg)).get("chat_template")
            if isinstance(ct, str):
                out.append((os.path.relpath(cfg, shared), ct, d))
    return out


def render(tpl, conv, special):
    msgs = ctu._normalize_chat_messages(json.loads(json.dumps(conv["messages"])))
    kwargs = dict(special)
    kwargs.update(conv["kwargs"])
    rendered, _ = ctu.render_jinja_template(conversations=[msgs], tools=conv["tools"], chat_template=tpl,
                                            add_generation_prompt=conv["add_generation_prompt"], **kwargs)
    return rendered[0]


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "conversations.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "tools/chat_template_refs.py", "transformers": transformers.__version__,
                   "jinja2": jinja2.__version__, "now": NOW, "conversations": CONVERSATIONS}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    n_ok = n_err = 0
    with open(os.path.join(OUT, "refs.jsonl"), "w", encoding="utf-8") as f:
        for path, tpl, d in templates(shared):
            special = special_tokens(d)
            for conv in CONVERSATIONS:
                rec = {"template": path, "case": conv["name"], "special": special}
                try:
                    rec["text"] = render(tpl, conv, special)
                    n_ok += 1
                except Exception as e:  # noqa: BLE001 - any template failure is a reference too
                    rec["error"] = str(e)
                    rec["error_type"] = type(e).__name__
                    n_err += 1
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"{len(templates(shared))} templates x {len(CONVERSATIONS)} conversations: {n_ok} rendered, {n_err} raised")


if __name__ == "__main__":
    main()
