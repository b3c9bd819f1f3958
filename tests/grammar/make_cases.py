#!/usr/bin/env python3
"""Writes cases.json: schemas with texts the grammar must accept (valid) and refuse (invalid). Run it after editing."""
import json
C = []
def case(name, schema, valid, invalid):
    C.append({"name": name, "schema": schema, "valid": valid, "invalid": invalid})

person = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"], "additionalProperties": False}
case("person", person,
     ['{"name":"Bob","age":42}', '{"name": "B\\"o\\\\b \\u00e9 é 日本 😀", "age": -7}', '{"name":"","age":0}',
      '{"name":"tab\\tnl\\n\\/","age":1}'],
     ['{"age":42,"name":"Bob"}', '{"name":"Bob"}', '{"name":"Bob","age":4.5}', '{"name":"Bob","age":42,"x":1}',
      '{"name":"Bob","age":042}', '{ "name":"Bob","age":1}', '{"name":"Bob" ,"age":1}', '{"name":"Bob","age":1} ',
      '{"name":"a\\qb","age":1}', '{"name":"\\ud800","age":1}', '{"name":"\\u0000","age":1}',
      '{"name":"a\tb","age":1}', '{"name":"Bob","age":1', '{"name":"Bob",  "age":1}',
      '{"name":"Bob","age":1}{', '{"name":"Bob","age":-}', '{"name":"Bob","age":1e5}'])
case("optional", {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "boolean"},
                                                     "c": {"type": "null"}},
                  "required": ["b"], "additionalProperties": False},
     ['{"b":true}', '{"a":1.5e3,"b":false}', '{"a":-0.25,"b":true,"c":null}', '{"b":true,"c":null}',
      '{"a":1E+2,"b":true}', '{"a":0,"b":false}'],
     ['{}', '{"a":1}', '{"b":true,"a":1}', '{"a":1.,"b":true}', '{"a":.5,"b":true}', '{"a":1e,"b":true}',
      '{"b":tru}', '{"b":true,"c":nul}', '{"b":true,"c":null,"c":null}', '{"b":true,}'])
case("enum_str", {"type": "string", "enum": ["red", "green", "gr"]},
     ['"red"', '"green"', '"gr"'], ['"gre"', '"blue"', 'red', '"red" ', '"Red"'])
case("enum_mixed", {"enum": [1, 12, "x", None, True, {"k": [1, 2]}]},
     ['1', '12', '"x"', 'null', 'true', '{"k":[1,2]}'], ['2', '123', '"y"', '{"k":[1]}', 'false', '1.0'])
case("const", {"const": "fixed"}, ['"fixed"'], ['"fixe"', '"fixedd"', 'fixed'])
case("array_of_objects", {"type": "array", "minItems": 1, "maxItems": 3,
                          "items": {"type": "object", "properties": {"id": {"type": "integer"},
                                    "tags": {"type": "array", "items": {"type": "string"}}},
                                    "required": ["id", "tags"], "additionalProperties": False}},
     ['[{"id":1,"tags":[]}]', '[{"id":1,"tags":["a"]}, {"id":2,"tags":["b","c"]}]',
      '[{"id":1,"tags":[]},{"id":2,"tags":[]},{"id":3,"tags":[]}]', '[{"id":1, "tags":[]}]'],
     ['[]', '[{"id":1,"tags":[]},{"id":2,"tags":[]},{"id":3,"tags":[]},{"id":4,"tags":[]}]', '[{"id":1}]',
      '[{"id":1,"tags":[1]}]', '[ {"id":1,"tags":[]}]', '[{"id":1,"tags":[]} ]'])
addr = {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
        "required": ["city"], "additionalProperties": False}
case("nested", {"type": "object", "properties": {"user": {"type": "object", "properties": {"address": addr},
                                                           "required": ["address"], "additionalProperties": False}},
                "required": ["user"], "additionalProperties": False},
     ['{"user":{"address":{"city":"Paris"}}}', '{"user": {"address": {"city": "Zürich", "zip": "8000"}}}'],
     ['{"user":{}}', '{"user":{"address":{"zip":"1"}}}', '{"user":{"address":{"city":"P","zip":1}}}'])
case("anyof_scalar", {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]},
     ['"s"', '5', 'null', '-3', '""'], ['1.5', 'true', '[]'])
case("anyof_objects", {"anyOf": [
        {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}},
         "required": ["kind", "x"], "additionalProperties": False},
        {"type": "object", "properties": {"kind": {"const": "b"}, "y": {"type": "string"}},
         "required": ["kind", "y"], "additionalProperties": False}]},
     ['{"kind":"a","x":1}', '{"kind":"b","y":"z"}'], ['{"kind":"a","y":"z"}', '{"kind":"b","x":1}', '{"kind":"c"}'])
case("ref_tree", {"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
                  "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                  "required": ["value", "children"], "additionalProperties": False}}, "$ref": "#/$defs/node"},
     ['{"value":1,"children":[]}', '{"value":1,"children":[{"value":2,"children":[{"value":3,"children":[]}]}]}'],
     ['{"value":1}', '{"value":1,"children":[{"value":2}]}'])
case("ref_list", {"definitions": {"list": {"type": "object", "properties": {"v": {"type": "string"},
                  "next": {"anyOf": [{"$ref": "#/definitions/list"}, {"type": "null"}]}},
                  "required": ["v", "next"], "additionalProperties": False}},
                  "type": "object", "properties": {"head": {"$ref": "#/definitions/list"}},
                  "required": ["head"], "additionalProperties": False},
     ['{"head":{"v":"a","next":null}}', '{"head":{"v":"a","next":{"v":"b","next":null}}}'],
     ['{"head":null}', '{"head":{"v":"a"}}'])
case("number", {"type": "number"},
     ['0', '-0', '1.5', '-1.5e-10', '2E5', '123', '1e+99', '0.0001'],
     ['01', '-', '1.5.5', '+1', '.5', '1e999', 'NaN', '1.', '- 1', '0x10'])
case("integer", {"type": "integer"},
     ['0', '-12', '123456789012345678'], ['1.0', '1e5', '1234567890123456789', '-', '00'])
case("type_list", {"type": ["string", "null"], "maxLength": 3},
     ['"abc"', 'null', '"é€😀"', '"\\n\\t"'], ['"abcd"', '"é€😀x"', '1'])
case("string_len", {"type": "string", "minLength": 2, "maxLength": 4},
     ['"ab"', '"a\\nb"', '"\\u00e9\\u00e9"', '"abcd"'], ['"a"', '"abcde"', '""', '"\\u00e9"'])
case("extra_keys", {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
     ['{"id":1}', '{"id":1,"extra":[1,{"a":null}],"more":"x"}', '{"id":1, "k": {"n": [true, false]}}'],
     ['{"extra":1,"id":1}', '{"id":1,"id":2}', '{"id":1,"a\\u0041":1}'])
case("json_object", "json_object",
     ['{}', '{"a":{"b":[1,2,{"c":"d"}]}, "e": true}', '{"x": -1.5e+3}', '{"":""}'],
     ['[]', '"x"', '{"a"}', '{"a":}', '{"a":1,}', '1'])
case("empty_containers", {"type": "object", "properties": {"list": {"type": "array"}, "obj": {"type": "object"}},
                          "required": ["list", "obj"], "additionalProperties": False},
     ['{"list":[],"obj":{}}', '{"list":[1,"a",null],"obj":{"k":{}}}'], ['{"list":{},"obj":[]}', '{"obj":{}}'])
case("nested_arrays", {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}},
     ['[]', '[[]]', '[[true,false],[true]]'], ['[[true,true,true]]', '[true]', '[[null]]'])
case("escaped_names", {"type": "object", "properties": {"a\"b": {"type": "integer"}, "é": {"type": "string"}},
                       "required": ["a\"b"], "additionalProperties": False},
     ['{"a\\"b":1}', '{"a\\"b":1,"é":"x"}'], ['{"ab":1}', '{"a\\"":1}', '{"a\\"b":1,"e":"x"}'])
case("additional_schema", {"type": "object", "additionalProperties": {"type": "integer"}},
     ['{}', '{"a":1,"b":2}'], ['{"a":"x"}', '{"a":1.5}'])
case("deep_arrays", {"$defs": {"a": {"type": "array", "items": {"$ref": "#/$defs/a"}}}, "$ref": "#/$defs/a"},
     ['[]', '[[],[[]]]', '[' * 32 + ']' * 32], ['[' * 33 + ']' * 33, '[[]'])
case("long_string", {"type": "object", "properties": {"s": {"type": "string", "maxLength": 40},
                                                     "t": {"type": "string", "minLength": 3}},
                     "required": ["s", "t"], "additionalProperties": False},
     ['{"s":"' + "a" * 40 + '","t":"abc"}', '{"s":"","t":"日本語"}'],
     ['{"s":"' + "a" * 41 + '","t":"abc"}', '{"s":"","t":"ab"}'])
json.dump(C, open(__import__("os").path.join(__import__("os").path.dirname(__file__), "cases.json"), "w"), ensure_ascii=False, indent=1)
print(len(C))
