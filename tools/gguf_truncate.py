# gguf_truncate.py — copies a llama-arch GGUF keeping only its first N blocks (metadata, tokenizer,
# token embedding and output norm unchanged; block_count set to N). Used to carry a small real
# quantized model (SmolLM2-135M Q4_1, 8 of 30 layers: ~38 MB) to the GPU machine for the serve test.
# Usage: python3 tools/gguf_truncate.py IN.gguf OUT.gguf N_LAYERS
import re, sys
import gguf

src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = gguf.GGUFReader(src)
arch = r.fields[gguf.Keys.General.ARCHITECTURE].contents()
w = gguf.GGUFWriter(dst, arch)
for f in r.fields.values():
    if f.name == gguf.Keys.General.ARCHITECTURE or f.name.startswith("GGUF."):
        continue
    vt = f.types[0]
    st = f.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
    val = n if f.name == f"{arch}.block_count" else f.contents()
    w.add_key_value(f.name, val, vt, sub_type=st)
keep = [t for t in r.tensors if not (m := re.match(r"blk\.(\d+)\.", t.name)) or int(m.group(1)) < n]
for t in keep:
    w.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_ti_data_to_file()
for t in keep:
    w.write_tensor_data(t.data, tensor_endianess=r.endianess)
w.close()
print(f"{dst}: {len(keep)} tensors, {n} blocks")
