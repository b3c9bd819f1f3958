/* hub.h — the public header of ragd's hub module: `ragd pull`, downloading a Hugging Face model
 * repository's files over HTTPS with libcurl.
 *
 * Protocol (the one huggingface_hub speaks, read in its source: hf_api.model_info, file_download):
 *   1. GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true → JSON {"sha": commit, "siblings":
 *      [{"rfilename", "size", "blobId", "lfs": {"sha256", "size"}}]}. The commit pins every download.
 *   2. GET {endpoint}/{repo}/resolve/{commit}/{file}, following redirects (LFS files redirect to a CDN);
 *      the hub's own response carries X-Linked-Etag (LFS: the sha256) / X-Linked-Size / ETag (git blob
 *      sha1) — used when the listing lacks them.
 *   3. Each file is written to DIR/file.part (resumed with Range: bytes=N- when a .part exists, restarted
 *      when the server answers 200 instead of 206), verified — LFS files by sha256, plain git files by
 *      their git blob sha1, both by size — and only then renamed to its final name. A file already present
 *      and verified is not downloaded again. A failed verification deletes the .part.
 * Errors name the repository, revision or file: 401 (private, gated or missing repository: set HF_TOKEN),
 * 403 (gated: accept the terms; HF_TOKEN), 404 (X-Error-Code RepoNotFound / RevisionNotFound /
 * EntryNotFound), network failures (after retries that resume what was received).
 *
 * Threading: one pull at a time per process (libcurl's global init happens on first use; the CLI is
 * single-threaded). Nothing here is used by the server.
 */
#ifndef RAGD_HUB_H
#define RAGD_HUB_H

#include "common/common.h"

typedef struct ragd_hub_opts {
    const char *repo;          /* "owner/name" (required) */
    const char *revision;      /* branch, tag or commit; NULL → "main" */
    const char *dir;           /* destination; NULL → {cache}/models/{owner}--{name} */
    const char *const *include; /* [n_include] shell globs on the file path; none → the default set */
    size_t n_include;
    const char *endpoint;      /* NULL → $HF_ENDPOINT or https://huggingface.co */
    const char *token;         /* NULL → $HF_TOKEN (sent as "Authorization: Bearer ...") */
    int retries;               /* transient failures retried per file; < 0 → $RAGD_PULL_RETRIES or 3 */
    bool progress;             /* draw a progress bar on stderr */
    bool quiet;                /* no per-file lines */
} ragd_hub_opts;

/* Downloads the selected files. Default selection (no include globs): config.json,
 * generation_config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab/merges,
 * sentence-transformers files (modules.json, config_sentence_transformers.json, N_Name/config.json of
 * pooling/normalize modules), *.safetensors and model.safetensors.index.json; when the repository has no
 * safetensors but exactly one .gguf, that file; several .gguf files → RAGD_EINVAL listing them (choose with
 * an include glob). On success *out_path (caller frees) is the model path to load: the directory, or the
 * .gguf file when exactly one GGUF was pulled. */
ragd_status ragd_hub_pull(const ragd_hub_opts *opts, char **out_path, ragd_err *err);

/* The default destination for a repository: {cache}/models/{owner}--{name}, cache being $RAGD_CACHE, else
 * $XDG_CACHE_HOME/ragd, else ~/.cache/ragd. Caller frees. */
char *ragd_hub_default_dir(const char *repo);

#endif
