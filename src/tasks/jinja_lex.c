/* jinja_lex.c — Jinja2 template source → tokens, as jinja2.lexer does with the settings of transformers'
 * chat-template environment: trim_blocks (one "\n" after a block or comment tag is dropped), lstrip_blocks
 * (spaces/tabs between a line start and a block or comment tag are dropped, unless the tag starts with
 * "{%+"), "-" modifiers strip all whitespace on that side, newlines normalized to "\n" and one trailing
 * newline of the template dropped (keep_trailing_newline=False), {% raw %} blocks kept verbatim, tag ends
 * ignored while brackets are open. String literals are decoded with Python's unicode_escape rules.
 *
 * Contract: jj_lex fills toks (malloc'd array) with JT_DATA text pointing into a private normalized copy
 * of the source that lives in the arena; names/operators point into the same copy. Any malformed input is
 * RAGD_EFORMAT naming the line; never reads past n.
 */
#include <stdlib.h>

#include "tasks/jinja.h"

typedef struct lexer {
    const char *s;
    size_t n, pos;
    int line;
    jj_arena *a;
    jj_toks *toks;
    ragd_err *err;
    bool line_starting;
} lexer;

static jj_tok *push(lexer *L, jj_tok_type t, const char *p, size_t n, int line) {
    jj_toks *v = L->toks;
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->v = ragd_xrealloc(v->v, v->cap * sizeof *v->v);
    }
    jj_tok *k = &v->v[v->n++];
    memset(k, 0, sizeof *k);
    k->t = t;
    k->p = p;
    k->n = n;
    k->line = line;
    return k;
}

static int count_nl(const char *p, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += p[i] == '\n';
    return c;
}

/* Python str.rstrip() on [p, p+n) */
static size_t rstrip_len(const char *p, size_t n) {
    size_t l;
    while (n > 0 && (l = jj_space_len_back((const unsigned char *)p, n)) > 0) n -= l;
    return n;
}

static size_t skip_ws(const char *p, size_t n, size_t i) {
    size_t l;
    while (i < n && (l = jj_space_len((const unsigned char *)p + i, n - i)) > 0) i += l;
    return i;
}

static bool starts(const lexer *L, size_t i, const char *lit) {
    size_t k = strlen(lit);
    return i + k <= L->n && !memcmp(L->s + i, lit, k);
}

/* Emits the data text [a, b) before a tag of kind ('{', '%', '#') with modifier mod ('-', '+', 0). */
static void emit_data(lexer *L, size_t a, size_t b, char kind, char mod) {
    const char *p = L->s + a;
    size_t n = b - a;
    if (mod == '-') n = rstrip_len(p, n);
    else if (mod != '+' && kind != '{') { /* lstrip_blocks */
        size_t lp = n;
        while (lp > 0 && p[lp - 1] != '\n') lp--;
        if (lp > 0 || L->line_starting) {
            bool only_ws = true;
            for (size_t i = lp; i < n && only_ws; i++) only_ws = p[i] == ' ' || p[i] == '\t';
            if (only_ws) n = lp;
        }
    }
    if (n) push(L, JT_DATA, p, n, L->line);
    L->line += count_nl(L->s + a, b - a);
}

/* Python unicode_escape decoding of a literal's body [p, p+n) into the arena. */
static jj_str *decode_string(lexer *L, const char *p, size_t n, int line) {
    ragd_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c != '\\' || i + 1 >= n) {
            ragd_buf_putc(&b, c);
            continue;
        }
        char e = p[++i];
        uint32_t cp = 0;
        int digits = 0, base = 16;
        switch (e) {
        case '\n': continue;
        case '\\': ragd_buf_putc(&b, '\\'); continue;
        case '\'': ragd_buf_putc(&b, '\''); continue;
        case '"': ragd_buf_putc(&b, '"'); continue;
        case 'a': ragd_buf_putc(&b, '\a'); continue;
        case 'b': ragd_buf_putc(&b, '\b'); continue;
        case 'f': ragd_buf_putc(&b, '\f'); continue;
        case 'n': ragd_buf_putc(&b, '\n'); continue;
        case 'r': ragd_buf_putc(&b, '\r'); continue;
        case 't': ragd_buf_putc(&b, '\t'); continue;
        case 'v': ragd_buf_putc(&b, '\v'); continue;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                base = 8;
                digits = 3;
                i--; /* the digit itself is the first of up to 3 */
                break;
            }
            ragd_buf_putc(&b, '\\');
            ragd_buf_putc(&b, e);
            continue;
        }
        int got = 0;
        while (got < digits && i + 1 < n) {
            char d = p[i + 1];
            int v = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10 : d >= 'A' && d <= 'F' ? d - 'A' + 10 : 99;
            if (v >= base) break;
            cp = cp * (uint32_t)base + (uint32_t)v;
            i++;
            got++;
        }
        if (base == 16 && got < digits) {
            ragd_buf_free(&b);
            ragd_err_set(L->err, RAGD_EFORMAT, "line %d: truncated \\%c escape in a string literal", line, e);
            return NULL;
        }
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            ragd_buf_free(&b);
            ragd_err_set(L->err, RAGD_EFORMAT, "line %d: escape \\%c%x in a string literal is not a valid character", line,
                         e, cp);
            return NULL;
        }
        char u[4];
        size_t k;
        if (cp < 0x80) u[0] = (char)cp, k = 1;
        else if (cp < 0x800) u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), k = 2;
        else if (cp < 0x10000)
            u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), k = 3;
        else
            u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f)), u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)),
            u[3] = (char)(0x80 | (cp & 0x3f)), k = 4;
        ragd_buf_append(&b, u, k);
    }
    jj_str *s = jj_str_new(L->a, b.data ? b.data : "", b.len);
    ragd_buf_free(&b);
    if (!s) ragd_err_set(L->err, RAGD_ENOMEM, "template too large");
    return s;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name0(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
static bool is_name(unsigned char c) { return is_name0(c) || is_digit((char)c); }

/* digits with single '_' separators starting at i; returns the end (i when none) */
static size_t digits_at(const char *s, size_t n, size_t i) {
    size_t j = i;
    while (j < n && is_digit(s[j])) {
        j++;
        if (j + 1 < n && s[j] == '_' && is_digit(s[j + 1])) j++;
    }
    return j;
}

static bool lex_number(lexer *L, size_t *pi) {
    const char *s = L->s;
    size_t n = L->n, i = *pi, j = digits_at(s, n, i);
    /* float: digits (.digits)? e[+-]digits | digits .digits */
    size_t k = j;
    bool frac = false, ex = false;
    if (k + 1 < n && s[k] == '.' && is_digit(s[k + 1])) {
        k = digits_at(s, n, k + 1);
        frac = true;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        size_t e = k + 1;
        if (e < n && (s[e] == '+' || s[e] == '-')) e++;
        if (e < n && is_digit(s[e])) {
            k = digits_at(s, n, e);
            ex = true;
        }
    }
    char tmp[128];
    if (frac || ex) {
        size_t m = 0;
        for (size_t q = i; q < k && m + 1 < sizeof tmp; q++)
            if (s[q] != '_') tmp[m++] = s[q];
        tmp[m] = 0;
        jj_tok *t = push(L, JT_FLOAT, s + i, k - i, L->line);
        t->f = strtod(tmp, NULL);
        *pi = k;
        return true;
    }
    /* integer: 0b / 0o / 0x / decimal */
    int base = 10;
    size_t q = i;
    if (s[i] == '0' && i + 1 < n && strchr("bBoOxX", s[i + 1]) && s[i + 1]) {
        char b = (char)(s[i + 1] | 0x20);
        base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
        q = i + 2;
    }
    uint64_t v = 0;
    size_t end = q;
    bool any = false, over = false;
    for (; end < n; end++) {
        char c = s[end];
        if (c == '_' && any) continue;
        int d = is_digit(c) ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : 99;
        if (d >= base) break;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) over = true;
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
    }
    if (!any || over || v > INT64_MAX)
        return ragd_err_set(L->err, RAGD_EFORMAT, "line %d: invalid or too large integer literal", L->line), false;
    jj_tok *t = push(L, JT_INT, s + i, end - i, L->line);
    t->i = (int64_t)v;
    *pi = end;
    return true;
}

static const char *const OPS[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "[", "]", "(",
                                  ")", "{", "}", "<", ">", "=", ".", ":", "|", ",", ";", NULL};

/* Tokens inside {{ }} (var) or {% %} until the matching end. Returns false on error. */
static bool lex_tag(lexer *L, bool var) {
    const char *s = L->s;
    size_t n = L->n, i = L->pos;
    int depth = 0;
    for (;;) {
        size_t w = skip_ws(s, n, i);
        L->line += count_nl(s + i, w - i);
        i = w;
        if (i >= n) return ragd_err_set(L->err, RAGD_EFORMAT, "line %d: unexpected end of template: missing '%s'", L->line, var ? "}}" : "%}"), false;
        if (depth == 0) {
            const char *end = var ? "}}" : "%}";
            size_t e = 0;
            char mod = 0;
            if (starts(L, i, end)) e = 2;
            else if ((s[i] == '-' || (!var && s[i] == '+')) && starts(L, i + 1, end)) e = 3, mod = s[i];
            if (e) {
                push(L, var ? JT_VAR_END : JT_BLOCK_END, s + i, e, L->line);
                i += e;
                L->line_starting = false;
                if (mod == '-') {
                    size_t w2 = skip_ws(s, n, i);
                    L->line += count_nl(s + i, w2 - i);
                    L->line_starting = w2 > i && s[w2 - 1] == '\n';
                    i = w2;
                } else if (!var && mod == 0 && i < n && s[i] == '\n') {
                    i++;
                    L->line++;
                    L->line_starting = true;
                }
                L->pos = i;
                return true;
            }
        }
        char c = s[i];
        if (is_digit(c)) {
            if (!lex_number(L, &i)) return false;
            continue;
        }
        if (is_name0((unsigned char)c)) {
            size_t j = i;
            while (j < n && is_name((unsigned char)s[j])) j++;
            push(L, JT_NAME, s + i, j - i, L->line);
            i = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != c) j += s[j] == '\\' ? 2 : 1;
            if (j >= n) return ragd_err_set(L->err, RAGD_EFORMAT, "line %d: unterminated string literal", L->line), false;
            int line = L->line;
            jj_str *str = decode_string(L, s + i + 1, j - i - 1, line);
            if (!str) return false;
            jj_tok *t = push(L, JT_STRING, s + i, j + 1 - i, line);
            t->s = str;
            L->line += count_nl(s + i, j + 1 - i);
            i = j + 1;
            continue;
        }
        const char *op = NULL;
        for (int k = 0; OPS[k]; k++)
            if (starts(L, i, OPS[k])) {
                op = OPS[k];
                break;
            }
        if (!op) return ragd_err_set(L->err, RAGD_EFORMAT, "line %d: unexpected character '%c'", L->line, c), false;
        size_t k = strlen(op);
        if (k == 1 && strchr("([{", op[0])) depth++;
        if (k == 1 && strchr(")]}", op[0])) {
            if (depth == 0) return ragd_err_set(L->err, RAGD_EFORMAT, "line %d: unexpected '%c'", L->line, op[0]), false;
            depth--;
        }
        push(L, JT_OP, s + i, k, L->line);
        i += k;
    }
}

/* {% raw %} ... {% endraw %}: i is just after the raw tag's end. */
static bool lex_raw(lexer *L) {
    const char *s = L->s;
    size_t n = L->n;
    for (size_t i = L->pos; i + 1 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '%') continue;
        size_t j = i + 2;
        char mod = 0;
        if (j < n && (s[j] == '-' || s[j] == '+')) mod = s[j++];
        j = skip_ws(s, n, j);
        if (!starts(L, j, "endraw")) continue;
        j = skip_ws(s, n, j + 6);
        size_t e = 0;
        char emod = 0;
        if (starts(L, j, "%}")) e = 2;
        else if ((s[j] == '-' || s[j] == '+') && starts(L, j + 1, "%}")) e = 3, emod = s[j];
        if (!e) continue;
        emit_data(L, L->pos, i, '%', mod);
        L->line += count_nl(s + i, j + e - i);
        j += e;
        if (emod == '-') {
            size_t w = skip_ws(s, n, j);
            L->line += count_nl(s + j, w - j);
            j = w;
        } else if (!emod && j < n && s[j] == '\n') j++, L->line++;
        L->pos = j;
        return true;
    }
    return ragd_err_set(L->err, RAGD_EFORMAT, "line %d: missing {%% endraw %%}", L->line), false;
}

ragd_status jj_lex(const char *src, size_t n, jj_arena *a, jj_toks *toks, ragd_err *err) {
    /* newlines → "\n", one trailing newline dropped */
    char *s = jj_alloc(a, n + 1);
    if (!s) return ragd_err_set(err, RAGD_ENOMEM, "template too large");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[m++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n') i++;
        } else s[m++] = src[i];
    }
    if (m && s[m - 1] == '\n') m--;
    s[m] = 0;
    lexer L = {.s = s, .n = m, .pos = 0, .line = 1, .a = a, .toks = toks, .err = err, .line_starting = true};
    while (L.pos < L.n) {
        size_t i = L.pos;
        const char *hit = NULL;
        while (i + 1 < L.n) {
            hit = memchr(s + i, '{', L.n - 1 - i);
            if (!hit) break;
            i = (size_t)(hit - s);
            if (s[i + 1] == '{' || s[i + 1] == '%' || s[i + 1] == '#') break;
            i++;
            hit = NULL;
        }
        if (!hit) {
            emit_data(&L, L.pos, L.n, '{', '+');
            L.pos = L.n;
            break;
        }
        char kind = s[i + 1];
        size_t j = i + 2;
        char mod = 0;
        if (j < L.n && (s[j] == '-' || s[j] == '+')) mod = s[j++];
        if (kind == '{' && mod == '+') mod = 0, j--; /* "{{+" is "{{" followed by unary + */
        if (kind == '#') {
            /* comment: up to the first "#}" */
            const char *e = NULL;
            for (size_t q = j; q + 1 < L.n; q++)
                if (s[q] == '#' && s[q + 1] == '}') {
                    e = s + q;
                    break;
                }
            if (!e) return ragd_err_set(err, RAGD_EFORMAT, "line %d: missing end of comment tag", L.line);
            emit_data(&L, L.pos, i, '#', mod);
            size_t q = (size_t)(e - s);
            char emod = q > j && (s[q - 1] == '-' || s[q - 1] == '+') ? s[q - 1] : 0;
            L.line += count_nl(s + i, q + 2 - i);
            q += 2;
            L.line_starting = false;
            if (emod == '-') {
                size_t w = skip_ws(s, L.n, q);
                L.line += count_nl(s + q, w - q);
                L.line_starting = w > q && s[w - 1] == '\n';
                q = w;
            } else if (!emod && q < L.n && s[q] == '\n') q++, L.line++, L.line_starting = true;
            L.pos = q;
            continue;
        }
        if (kind == '%') { /* {% raw %} */
            size_t w = skip_ws(s, L.n, j);
            if (starts(&L, w, "raw")) {
                size_t w2 = skip_ws(s, L.n, w + 3);
                size_t e = 0;
                char emod = 0;
                if (starts(&L, w2, "%}")) e = 2;
                else if (w2 < L.n && s[w2] == '-' && starts(&L, w2 + 1, "%}")) e = 3, emod = '-';
                if (e) {
                    emit_data(&L, L.pos, i, '%', mod);
                    L.line += count_nl(s + i, w2 + e - i);
                    size_t q = w2 + e;
                    if (emod == '-') {
                        size_t w3 = skip_ws(s, L.n, q);
                        L.line += count_nl(s + q, w3 - q);
                        q = w3;
                    }
                    L.pos = q;
                    if (!lex_raw(&L)) return err->code;
                    continue;
                }
            }
        }
        emit_data(&L, L.pos, i, kind, mod);
        push(&L, kind == '{' ? JT_VAR_BEGIN : JT_BLOCK_BEGIN, s + i, j - i, L.line);
        L.pos = j;
        if (!lex_tag(&L, kind == '{')) return err->code;
    }
    push(&L, JT_EOF, s + L.n, 0, L.line);
    return RAGD_OK;
}
