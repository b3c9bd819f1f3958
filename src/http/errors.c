/* errors.c — OpenAI-style error replies: {"error": {"message", "type", "param", "code"}}.
 *
 * Status → type: 400/405/408/413/414/415/417/422/431/505 invalid_request_error, 404 not_found_error
 * (models and routes), 401 authentication_error, 429 rate_limit_error, 500 server_error, 503
 * service_unavailable_error, 504 timeout_error. The message always says what was wrong and, for a
 * field, which one (param). The door (door.c) writes the same objects in its own replies. */
#include "http/http_internal.h"

#include <stdio.h>

static const char *type_of(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 503: return "service_unavailable_error";
    case 504: return "timeout_error";
    default: return status >= 500 && status != 505 ? "server_error" : "invalid_request_error";
    }
}

void http_error_json(ragd_buf *b, int status, const char *param, const char *code, const char *msg) {
    size_t n = strlen(msg), bad;
    ragd_buf_puts(b, "{\"error\":{\"message\":");
    if (ragd_utf8_valid(msg, n, &bad)) ragd_buf_json_str(b, msg, n);
    else ragd_buf_json_str(b, msg, bad); /* never emit invalid UTF-8 */
    ragd_buf_puts(b, ",\"type\":");
    const char *t = type_of(status);
    ragd_buf_json_str(b, t, strlen(t));
    ragd_buf_puts(b, ",\"param\":");
    if (param) ragd_buf_json_str(b, param, strlen(param));
    else ragd_buf_puts(b, "null");
    ragd_buf_puts(b, ",\"code\":");
    if (code) ragd_buf_json_str(b, code, strlen(code));
    else ragd_buf_puts(b, "null");
    ragd_buf_puts(b, "}}");
}

void http_raw_error(ragd_buf *b, int status, const char *code, const char *msg, const char *req_id, int retry_after,
                    const char *cors_origin) {
    ragd_buf body = {0};
    http_error_json(&body, status, NULL, code, msg);
    ragd_buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n",
                    status, http_reason(status), body.len);
    if (req_id) ragd_buf_printf(b, "X-Request-Id: %s\r\n", req_id);
    if (retry_after > 0) ragd_buf_printf(b, "Retry-After: %d\r\n", retry_after);
    if (cors_origin && *cors_origin)
        ragd_buf_printf(b, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\nAccess-Control-Expose-Headers: "
                           HTTP_CORS_EXPOSE "\r\n", cors_origin);
    ragd_buf_puts(b, "\r\n");
    ragd_buf_append(b, body.data, body.len);
    ragd_buf_free(&body);
}

/* TEI's codes for a TEI-shaped request (its ErrorType → StatusCode): too many inputs or tokens 413
 * (Validation), an empty input or malformed JSON 400 (Empty / the JSON syntax), any other invalid
 * field 422 (what its JSON extractor answers); the body keeps ragd's error shape. */
/* (not inlined: GCC's -Wstring-compare misfires on the callers' literals after inlining) */
__attribute__((noinline)) static int tei_status(int status, const char *code) {
    static const struct {
        const char *code;
        int status;
    } map[] = {{"too_many_inputs", 413}, {"context_length_exceeded", 413}, {"empty_input", 400},
               {"invalid_json", 400}, {"conflicting_fields", 400}};
    if (status != 400 || !code) return status;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(code, map[i].code)) return map[i].status;
    return 422;
}

static void put_error(http_req *r, int status, const char *param, const char *code, const char *msg) {
    if (r->tei) status = tei_status(status, code);
    ragd_buf_reset(&r->out);
    r->status = status;
    r->content_type = "application/json";
    http_error_json(&r->out, status, param, code, msg);
}

void http_error(http_req *r, int status, const char *param, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    put_error(r, status, param, code, msg);
}

void http_error_status(http_req *r, ragd_status st, const char *param, const char *msg) {
    int status;
    const char *code;
    switch (st) {
    case RAGD_EINVAL: status = 400; code = "invalid_value"; break;
    case RAGD_ERANGE: status = 400; code = "out_of_range"; break;
    case RAGD_ENOTFOUND: status = 404; code = "not_found"; break;
    case RAGD_EUNSUPPORTED: status = 400; code = "unsupported"; break;
    case RAGD_EBUSY: status = 429; code = "queue_full"; break;
    case RAGD_ETIMEOUT: status = 504; code = "timeout"; break;
    case RAGD_ECANCELLED: status = 503; code = "cancelled"; break;
    case RAGD_EDEVICE: status = 500; code = "device_error"; break;
    case RAGD_EUNAVAILABLE: status = 503; code = "model_not_ready"; break;
    default: status = 500; code = "internal_error"; break;
    }
    if (st == RAGD_EINTERNAL || st == RAGD_EDEVICE || st == RAGD_ENOMEM || st == RAGD_EIO)
        RAGD_ERROR("[%s] %s failed: %s: %s", r->id, ragd_endpoint_name(r->ep), ragd_status_name(st), msg);
    put_error(r, status, param, code, msg);
}

void http_reply_json(http_req *r, int status) {
    r->status = status;
    r->content_type = "application/json";
}
