"""Issue 17 through `ragd serve` with the official openai client: the model's own chat template with tools,
tool_choice, tool-call history replayed with "content": null, template refusals as 400, --chat-template,
and the tool_calls response / stream shapes (a fixed answer through the RAGD_TEST_CHAT_ANSWER test hook,
since the tiny fixture models cannot be made to call a tool)."""
import json
import os
import tempfile

import openai
import pytest

from conftest import CHAT, err_of, start

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HISTORY = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "21 degrees, clear"},
]


def client(s):
    return openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)


def ntok(s, body):
    r = s.post("/tokenize", body)
    assert r.status_code == 200, r.text
    return r.json()["count"]


def test_tools_are_rendered_and_history_replays(server):
    c = client(server)
    # tools reach the template (Qwen3's renders them into the system turn)
    plain = ntok(server, {"messages": HISTORY[:2]})
    with_tools = ntok(server, {"messages": HISTORY[:2], "tools": [WEATHER]})
    assert with_tools > plain + 20
    # a LangChain-style tool loop: assistant tool_calls with content null, then the tool result
    r = c.chat.completions.create(model="qwen3-tiny", messages=HISTORY, tools=[WEATHER], max_tokens=6, temperature=0)
    ch = r.choices[0]
    assert ch.message.role == "assistant" and ch.finish_reason in ("stop", "length", "tool_calls")
    assert r.usage.prompt_tokens == ntok(server, {"messages": HISTORY, "tools": [WEATHER]})
    # same prompt whether arguments come as JSON text (OpenAI) or as an object
    hist2 = json.loads(json.dumps(HISTORY))
    hist2[2]["tool_calls"][0]["function"]["arguments"] = {"city": "Paris"}
    assert ntok(server, {"messages": hist2, "tools": [WEATHER]}) == r.usage.prompt_tokens
    # tool_choice none / auto and parallel_tool_calls are accepted
    for extra in ({"tool_choice": "none"}, {"tool_choice": "auto", "parallel_tool_calls": False}):
        r = c.chat.completions.create(model="qwen3-tiny", messages=HISTORY, tools=[WEATHER], max_tokens=2, **extra)
        assert r.choices[0].message.role == "assistant"
    # streamed, the shapes parse with the client
    chunks = list(c.chat.completions.create(model="qwen3-tiny", messages=HISTORY, tools=[WEATHER], max_tokens=6,
                                            temperature=0, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length", "tool_calls")


def test_template_kwargs_reach_the_template(server):
    base = {"messages": [{"role": "user", "content": "hi"}]}
    on = ntok(server, base)
    off = ntok(server, dict(base, chat_template_kwargs={"enable_thinking": False}))
    assert off == ntok(server, dict(base, enable_thinking=False)) and off > on  # "<think>\n\n</think>\n\n"
    assert ntok(server, dict(base, add_generation_prompt=False)) < on


CITY = {"type": "function", "function": {"name": "get_city", "strict": True, "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 8}, "days": {"type": "integer"}},
    "required": ["city", "days"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"], "additionalProperties": False}}}


def test_required_and_named_tool_choice_force_a_call():
    """tool_choice "required" / a named function: the answer is constrained to a call (issue 17), so even
    the random tiny model returns well-formed tool calls whose arguments match the parameters schema."""
    server = start(["--chat", CHAT, "--max-model-len", "2048", "--max-seqs", "4"])
    try:
        _forced_calls(client(server))
    finally:
        assert server.stop() == 0


def _forced_calls(c):
    for seed in range(6):
        for tc in ("required", {"type": "function", "function": {"name": "get_city"}}):
            for stream in (False, True):
                kw = dict(model="qwen3-tiny", messages=[{"role": "user", "content": "hi"}], tools=[TIME, CITY], tool_choice=tc,
                          max_tokens=120,
                          seed=seed, parallel_tool_calls=False)
                if stream:
                    calls, fin = {}, None
                    for ch in c.chat.completions.create(stream=True, **kw):
                        for d in ch.choices:
                            fin = d.finish_reason or fin
                            for t in d.delta.tool_calls or []:
                                calls[t.index] = t
                    calls = [calls[k] for k in sorted(calls)]
                else:
                    r = c.chat.completions.create(**kw)
                    fin, calls = r.choices[0].finish_reason, r.choices[0].message.tool_calls
                    assert r.choices[0].message.content is None
                assert fin == "tool_calls", (tc, seed, fin)
                assert len(calls) == 1
                name = calls[0].function.name
                args = json.loads(calls[0].function.arguments)
                assert isinstance(args, dict)
                if isinstance(tc, dict):
                    assert name == "get_city"
                assert name in ("get_time", "get_city")
                if name == "get_time":
                    assert args in ({"tz": "UTC"}, {"tz": "CET"})
                if name == "get_city":
                    assert set(args) == {"city", "days"} and isinstance(args["days"], int) and len(args["city"]) <= 8


def many_tools(n):
    kinds = [{"type": "integer"}, {"type": "boolean"}, {"enum": ["a", "b", "c"]}, {"type": "string", "maxLength": 6}]
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo", "lima",
             "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango", "uniform", "victor"]
    return [{"type": "function", "function": {"name": "%s_%d" % (words[i % len(words)], i), "strict": i % 2 == 0, "parameters": {
        "type": "object", "properties": {"x%d" % i: kinds[i % 4], "opt": {"type": "integer"}}, "required": ["x%d" % i],
        "additionalProperties": False}}} for i in range(n)]


def test_required_with_many_tools():
    """More than 8 tools (the matcher's anyOf alternatives): every function stays choosable and each call
    validates against its own function's schema, with and without parallel calls."""
    import jsonschema
    tools = many_tools(20)
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    server = start(["--chat", CHAT, "--max-model-len", "8192", "--max-seqs", "16"])
    try:
        chosen, n_calls, multi, n_cut = set(), 0, 0, 0
        for seed in range(12):
            parallel = seed % 2 == 1
            r = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": tools,
                                                     "tool_choice": "required", "parallel_tool_calls": parallel,
                                                     "max_tokens": 400, "temperature": 1.5, "seed": seed, "n": 8}, timeout=300)
            assert r.status_code == 200, r.text[:500]
            for ch in r.json()["choices"]:
                if parallel and ch["finish_reason"] == "length":  # the random model may repeat calls until max_tokens
                    n_cut += 1
                    continue
                assert ch["finish_reason"] == "tool_calls", ch
                calls = ch["message"]["tool_calls"]
                assert calls and (parallel or len(calls) == 1), calls
                multi += len(calls) > 1
                for call in calls:
                    name = call["function"]["name"]
                    jsonschema.validate(json.loads(call["function"]["arguments"]), by_name[name])
                    chosen.add(name)
                    n_calls += 1
        assert len(chosen) >= 8 and any(int(n.split("_")[1]) >= 8 for n in chosen), sorted(chosen)
        assert multi > 0 and n_cut < 24  # parallel_tool_calls: several calls in one answer, most complete
        print("many tools: %d calls validated, %d functions chosen, %d parallel answers cut by max_tokens" %
              (n_calls, len(chosen), n_cut))
        # a duplicate name is a 400 naming both entries
        dup = tools[:3] + [dict(tools[1])]
        r = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": dup,
                                                 "tool_choice": "required"})
        e = err_of(r)
        assert r.status_code == 400 and e["param"] == "tools" and "tools[1] and tools[3]" in e["message"], e
        assert server.get("/health/ready").status_code == 200
    finally:
        assert server.stop() == 0


def test_auto_tool_choice_constrains_a_started_call():
    """tool_choice auto: the answer is free text until the model starts a call, then the call is
    constrained to one of the tools' schemas (a lazy grammar). The random fixture never writes
    "<tool_call>" by itself, so the test hook RAGD_TEST_TOOL_TRIGGER makes a newline the trigger (the
    grammar then writes the "<tool_call>" marker): the same path with another trigger text."""
    import jsonschema
    tools = many_tools(10)
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    server = start(["--chat", CHAT, "--max-model-len", "4096", "--max-seqs", "8"], env={"RAGD_TEST_TOOL_TRIGGER": "\n"})
    try:
        n_calls, n_text, chosen, multi = 0, 0, set(), 0
        for seed in range(10):
            parallel = seed % 2 == 0
            body = {"messages": [{"role": "user", "content": "hi"}], "tools": tools, "max_tokens": 400 if parallel else 200,
                    "seed": seed, "n": 8, "temperature": 1.0, "parallel_tool_calls": parallel}
            if seed % 3 == 0:
                body["tool_choice"] = "auto"
            r = server.post("/v1/chat/completions", body, timeout=300)
            assert r.status_code == 200, r.text[:300]
            for ch in r.json()["choices"]:
                m = ch["message"]
                if m.get("tool_calls"):
                    # parallel_tool_calls false: the grammar allows one call and ends the choice;
                    # true: further <tool_call> blocks may follow, each constrained, in order, distinct ids
                    assert ch["finish_reason"] == "tool_calls" and (parallel or len(m["tool_calls"]) == 1), ch
                    for t in m["tool_calls"]:
                        f = t["function"]
                        jsonschema.validate(json.loads(f["arguments"]), by_name[f["name"]])
                        chosen.add(f["name"])
                    assert len({t["id"] for t in m["tool_calls"]}) == len(m["tool_calls"]), m
                    n_calls += 1
                    multi += len(m["tool_calls"]) > 1
                else:
                    # free text: a call the grammar started is cut only by max_tokens
                    assert "<tool_call>" not in (m["content"] or "") or ch["finish_reason"] == "length", ch
                    n_text += 1
        assert n_calls >= 10 and n_text >= 10 and len(chosen) >= 2 and multi >= 1, (n_calls, n_text, chosen, multi)
        print("auto: %d answers with calls validated (%d functions, %d with several calls), %d text answers"
              % (n_calls, len(chosen), multi, n_text))
        # a stream carries the call as tool_calls deltas
        c = client(server)
        got = None
        for seed in range(10):
            calls, fin = {}, None
            for ch in c.chat.completions.create(model="qwen3-tiny", messages=[{"role": "user", "content": "hi"}], tools=tools,
                                                max_tokens=200, seed=seed, stream=True, parallel_tool_calls=False):
                for d in ch.choices:
                    fin = d.finish_reason or fin
                    for t in d.delta.tool_calls or []:
                        calls.setdefault(t.index, []).append(t)
            if calls:
                got = calls
                assert fin == "tool_calls"
                name = next(t.function.name for t in calls[0] if t.function and t.function.name)
                args = "".join(t.function.arguments or "" for t in calls[0] if t.function)
                jsonschema.validate(json.loads(args), by_name[name])
                break
        assert got, "no streamed call in 10 seeds"
        # tool_choice none and requests without tools are never constrained (no marker written)
        for body in ({"tools": tools, "tool_choice": "none"}, {}):
            r = server.post("/v1/chat/completions", dict({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 60,
                                                          "seed": 1, "n": 8}, **body))
            assert r.status_code == 200
            for ch in r.json()["choices"]:
                assert "<tool_call>" not in (ch["message"]["content"] or "") and not ch["message"].get("tool_calls"), ch
    finally:
        assert server.stop() == 0


def shared_template(rel):
    path = os.path.join(SHARED, "models", rel)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not in RAGD_SHARED")
    return path


def check_calls(m, by_name, parallel):
    """Every call validates against its own function; ids distinct; one call without parallel_tool_calls."""
    import jsonschema
    calls = m["tool_calls"]
    assert calls and (parallel or len(calls) == 1), m
    for t in calls:
        assert t["type"] == "function" and t["id"], t
        jsonschema.validate(json.loads(t["function"]["arguments"]), by_name[t["function"]["name"]])
    assert len({t["id"] for t in calls}) == len(calls), calls
    return {t["function"]["name"] for t in calls}


def test_auto_llama3_json_call_is_constrained():
    """Llama 3.x's template (detected from its text: header tokens + "parameters") makes the whole answer
    the call: under tool_choice auto an answer that starts with "{" (or <|python_tag|>) is constrained to
    {"name": ..., "parameters": ...} of one of the tools. logit_bias on the "{" token makes the random
    fixture start its answers with one; without it the answers stay text (nothing turned into a call)."""
    tpl = shared_template("llama-3.2-3b-instruct/chat_template.jinja")
    tools = many_tools(10)
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    server = start(["--chat", CHAT, "--max-model-len", "4096", "--max-seqs", "8", "--chat-template", tpl])
    try:
        brace = server.post("/tokenize", {"text": "{", "add_special_tokens": False}).json()["tokens"]
        assert len(brace) == 1, brace
        msgs = [{"role": "user", "content": "hi"}]
        n_calls, chosen = 0, set()
        for seed in range(6):
            r = server.post("/v1/chat/completions", {"messages": msgs, "tools": tools, "max_tokens": 300, "seed": seed, "n": 8,
                                                     "temperature": 1.0, "logit_bias": {str(brace[0]): 100},
                                                     "parallel_tool_calls": seed % 2 == 1}, timeout=300)
            assert r.status_code == 200, r.text[:300]
            for ch in r.json()["choices"]:
                m = ch["message"]
                # every answer started with "{", so every one is one complete, valid call (one even with
                # parallel_tool_calls: Llama 3's templates refuse to replay several)
                assert ch["finish_reason"] == "tool_calls" and m["content"] is None, ch
                chosen |= check_calls(m, by_name, False)
                n_calls += 1
        assert n_calls == 48 and len(chosen) >= 3, (n_calls, chosen)
        print("llama3 auto: %d answers, each one call, %d functions" % (n_calls, len(chosen)))
        # streamed: the call arrives as tool_calls, no content
        c = client(server)
        content, args, names, fin = "", {}, {}, None
        for chunk in c.chat.completions.create(model="qwen3-tiny", messages=msgs, tools=tools, max_tokens=300, seed=3,
                                               logit_bias={str(brace[0]): 100}, parallel_tool_calls=False, stream=True):
            d = chunk.choices[0]
            fin = d.finish_reason or fin
            content += d.delta.content or ""
            for t in d.delta.tool_calls or []:
                args[t.index] = args.get(t.index, "") + (t.function.arguments or "")
                names[t.index] = names.get(t.index, "") + (t.function.name or "")
        assert fin == "tool_calls" and content == "" and list(args) == [0], (fin, content, args)
        import jsonschema
        jsonschema.validate(json.loads(args[0]), by_name[names[0]])
        # without the bias: text answers (the fixture's first tokens are "\n\n" or empty ones), never
        # constrained into a call
        r = server.post("/v1/chat/completions", {"messages": msgs, "tools": tools, "max_tokens": 40, "seed": 1, "n": 8})
        for ch in r.json()["choices"]:
            m = ch["message"]
            assert not m.get("tool_calls") and m["content"] is not None and ch["finish_reason"] == "length", ch
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("tpl,marker", [("mistral-nemo-instruct-2407/chat_template.jinja", "[TOOL_CALLS]"),
                                        ("granite-3.3-2b-instruct/chat_template.jinja", "<|tool_call|>"),
                                        ("mistral-small-3.2-24b-instruct-2506/chat_template.jinja", "[TOOL_CALLS]")],
                         ids=["mistral-nemo", "granite-3.3", "mistral-small-3.2"])
def test_auto_marker_call_is_constrained(tpl, marker):
    """Mistral v3 ([TOOL_CALLS][{...}]), Granite (<|tool_call|>[{...}]) and Mistral v11
    ([TOOL_CALLS]name[ARGS]{...}[TOOL_CALLS]...) under tool_choice auto: after the marker the calls are
    constrained, each validating against its tool; one call without parallel_tool_calls. The random
    fixture (no special [ARGS] token: the grammar writes its text) never writes the marker, so the test
    hook RAGD_TEST_TOOL_TRIGGER makes a newline the trigger (the grammar then writes the marker), and
    logit_bias on the newline token makes every answer start with one: every answer is a call."""
    path = shared_template(tpl)
    tools = many_tools(10)
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    server = start(["--chat", CHAT, "--max-model-len", "4096", "--max-seqs", "8", "--chat-template", path],
                   env={"RAGD_TEST_TOOL_TRIGGER": "\n"})
    try:
        nl = server.post("/tokenize", {"text": "\n", "add_special_tokens": False}).json()["tokens"]
        assert len(nl) == 1, nl
        n_calls, n_cut, multi, chosen = 0, 0, 0, set()
        for seed in range(6):
            parallel = seed % 2 == 1
            r = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": tools,
                                                     "max_tokens": 250, "seed": seed, "n": 8, "temperature": 1.0,
                                                     "logit_bias": {str(nl[0]): 100}, "parallel_tool_calls": parallel},
                                timeout=300)
            assert r.status_code == 200, r.text[:300]
            for ch in r.json()["choices"]:
                m = ch["message"]
                if parallel and ch["finish_reason"] == "length":  # the random model may add calls until max_tokens
                    assert m["content"].startswith("\n" + marker) and not m.get("tool_calls"), ch
                    n_cut += 1
                    continue
                assert ch["finish_reason"] == "tool_calls", ch
                chosen |= check_calls(m, by_name, parallel)
                # the content is the text before the marker: the newline that triggered it, whitespace = none
                assert m["content"] is None, m
                n_calls += 1
                multi += len(m["tool_calls"]) > 1
        # without parallel calls all 24 answers are one call; with them, the arrays the random model did
        # close (the rest, cut by max_tokens, stays content). After a v11 call the fixture always picks EOS
        # over a further "[TOOL_CALLS]" (written as text here): its further calls are checked in test_grammar
        v11 = "small-3.2" in tpl
        assert n_calls + n_cut == 48 and n_calls >= 24 + 4 and (multi >= 1 or v11) and len(chosen) >= 3, \
            (n_calls, multi, n_cut, chosen)
        print("%s auto: %d answers with calls (%d with several, %d functions), %d cut by max_tokens"
              % (marker, n_calls, multi, len(chosen), n_cut))
    finally:
        assert server.stop() == 0


def fake_server(answer, template=None, max_len=512):
    args = ["--chat", CHAT, "--max-model-len", str(max_len)]
    if template:
        args += ["--chat-template", template]
    return start(args, env={"RAGD_TEST_CHAT_ANSWER": answer})


def test_tool_call_response_and_stream_shapes():
    answer = 'Checking.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' \
             '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    s = fake_server(answer)
    try:
        c = client(s)
        r = c.chat.completions.create(model="qwen3-tiny", messages=HISTORY[:2], tools=[WEATHER], max_tokens=4)
        ch = r.choices[0]
        assert ch.finish_reason == "tool_calls" and ch.message.content == "Checking."
        calls = ch.message.tool_calls
        assert [t.function.name for t in calls] == ["get_weather", "get_weather"]
        assert [json.loads(t.function.arguments) for t in calls] == [{"city": "Paris"}, {"city": "Oslo"}]
        assert all(t.type == "function" and t.id for t in calls) and calls[0].id != calls[1].id
        # parallel_tool_calls false: the first call only
        r = c.chat.completions.create(model="qwen3-tiny", messages=HISTORY[:2], tools=[WEATHER], max_tokens=4,
                                      parallel_tool_calls=False)
        assert len(r.choices[0].message.tool_calls) == 1
        # replaying the answer is accepted (the loop continues)
        hist = HISTORY[:2] + [r.choices[0].message.model_dump(exclude_none=True)] + \
            [{"role": "tool", "tool_call_id": r.choices[0].message.tool_calls[0].id, "content": "21C"}]
        assert c.chat.completions.create(model="qwen3-tiny", messages=hist, tools=[WEATHER], max_tokens=2).choices
        # streamed: content deltas, then the calls, then finish_reason tool_calls
        content, calls, finish = "", {}, None
        for ch in c.chat.completions.create(model="qwen3-tiny", messages=HISTORY[:2], tools=[WEATHER], max_tokens=4,
                                            stream=True, stream_options={"include_usage": True}):
            if not ch.choices:
                assert ch.usage.completion_tokens >= 1
                continue
            d = ch.choices[0].delta
            content += d.content or ""
            for t in d.tool_calls or []:
                e = calls.setdefault(t.index, {"name": "", "args": ""})
                e["name"] += t.function.name or ""
                e["args"] += t.function.arguments or ""
            finish = ch.choices[0].finish_reason or finish
        assert content == "Checking." and finish == "tool_calls"
        assert [json.loads(calls[i]["args"]) for i in sorted(calls)] == [{"city": "Paris"}, {"city": "Oslo"}]
        # without tools the same answer is plain text
        r = c.chat.completions.create(model="qwen3-tiny", messages=HISTORY[:2], max_tokens=4)
        assert r.choices[0].message.tool_calls is None
        # tool_choice none: text too
        r = c.chat.completions.create(model="qwen3-tiny", messages=HISTORY[:2], tools=[WEATHER], tool_choice="none", max_tokens=4)
        assert r.choices[0].message.tool_calls is None
    finally:
        assert s.stop() == 0


def test_malformed_tool_call_stays_content():
    s = fake_server('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>')
    try:
        r = client(s).chat.completions.create(model="qwen3-tiny", messages=HISTORY[:2], tools=[WEATHER], max_tokens=4)
        assert r.choices[0].message.tool_calls is None and r.choices[0].message.content.startswith("<tool_call>")
        assert r.choices[0].finish_reason != "tool_calls"
    finally:
        assert s.stop() == 0


def test_chat_template_option_and_refusals():
    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "t.jinja")
        with open(good, "w") as f:
            f.write("{%- if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                    "{%- for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                    "{%- if add_generation_prompt %}<assistant>{% endif %}")
        s = start(["--chat", CHAT, "--max-model-len", "512", "--chat-template", good])
        try:
            r = s.post("/v1/chat/completions", {"messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}]})
            assert r.status_code == 400 and "System role not supported" in err_of(r)["message"]
            assert err_of(r)["param"] == "messages"
            r = s.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "y"}], "max_tokens": 2})
            assert r.status_code == 200, r.text
            # the rendering is the file's: "<user>y\n<assistant>"
            t = s.post("/tokenize", {"messages": [{"role": "user", "content": "y"}]}).json()["tokens"]
            assert s.post("/detokenize", {"tokens": t}).json()["prompt"] == "<user>y\n<assistant>"
        finally:
            assert s.stop() == 0
        bad = os.path.join(d, "bad.jinja")
        with open(bad, "w") as f:
            f.write("{% for m in messages %}{{ m.content }}")
        for tpl, want in ((bad, "endfor"), (os.path.join(d, "missing.jinja"), "missing.jinja")):
            with pytest.raises(RuntimeError) as e:
                start(["--chat", CHAT, "--chat-template", tpl])
            assert "chat template" in str(e.value) or "chat-template" in str(e.value)
            assert want in str(e.value)


SHARED = os.environ.get("RAGD_SHARED", "")
# (template in RAGD_SHARED/models, an answer in the syntax it teaches, the calls expected, the content expected)
SYNTAXES = [
    ("llama-3.2-3b-instruct/chat_template.jinja",
     '{"name": "get_weather", "parameters": {"city": "Paris"}}', [{"city": "Paris"}], None),
    ("mistral-nemo-instruct-2407/chat_template.jinja",
     '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_weather", "arguments": {"city": "Oslo"}}]',
     [{"city": "Paris"}, {"city": "Oslo"}], None),
    ("mistral-small-3.2-24b-instruct-2506/chat_template.jinja",
     'Sure.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', [{"city": "Paris"}], "Sure."),
    ("mistral-small-3.2-24b-instruct-2506/chat_template.jinja",
     '[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Paris"}[TOOL_CALLS]get_weather[ARGS]{"city": "Oslo"}',
     [{"city": "Paris"}, {"city": "Oslo"}], None),
    ("llama-3.1-8b-instruct/chat_template.jinja",
     '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}', [{"city": "Oslo"}], None),
    ("granite-3.3-2b-instruct/chat_template.jinja",
     '<|tool_call|>[{"name": "get_weather", "arguments": {"city": "Paris"}}]', [{"city": "Paris"}], None),
    ("hermes-3-llama-3.1-8b/chat_template.tool_use.jinja",
     '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', [{"city": "Paris"}], None),
]


@pytest.mark.parametrize("tpl,answer,want,content", SYNTAXES, ids=["%s-%d" % (s[0].split("/")[0], i) for i, s in enumerate(SYNTAXES)])
def test_tool_call_syntax_follows_the_template(tpl, answer, want, content):
    """The syntax read from answers is the one the chat template teaches (--chat-template here; the same
    detection runs on a model's own template), for non-streaming and streaming replies alike."""
    path = os.path.join(SHARED, "models", tpl)
    if not os.path.exists(path):
        pytest.skip(f"{path} is not in RAGD_SHARED")
    s = fake_server(answer, template=path, max_len=4096)  # tool definitions make long system prompts
    try:
        c = client(s)
        msgs = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
        r = c.chat.completions.create(model="qwen3-tiny", messages=msgs, tools=[WEATHER], max_tokens=4)
        ch = r.choices[0]
        assert ch.finish_reason == "tool_calls", ch
        assert ch.message.content == content
        assert [json.loads(t.function.arguments) for t in ch.message.tool_calls] == want
        assert all(t.function.name == "get_weather" and t.id for t in ch.message.tool_calls)
        if "mistral" in tpl:  # Mistral templates accept only ids of 9 alphanumerics on replay
            assert all(len(t.id) == 9 and t.id.isalnum() for t in ch.message.tool_calls)
        calls, text = {}, ""
        for chunk in c.chat.completions.create(model="qwen3-tiny", messages=msgs, tools=[WEATHER], max_tokens=4, stream=True):
            d = chunk.choices[0].delta
            text += d.content or ""
            for t in d.tool_calls or []:
                calls.setdefault(t.index, "")
                calls[t.index] += t.function.arguments or ""
        assert [json.loads(calls[i]) for i in sorted(calls)] == want and text == (content or "")
        # the call replays through the same template (the loop continues)
        hist = msgs + [ch.message.model_dump(exclude_none=True)] + \
            [{"role": "tool", "tool_call_id": t.id, "content": "21C"} for t in ch.message.tool_calls]
        assert c.chat.completions.create(model="qwen3-tiny", messages=hist, tools=[WEATHER], max_tokens=2).choices
    finally:
        assert s.stop() == 0
