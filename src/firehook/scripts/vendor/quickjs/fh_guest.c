/* firehook's WebAssembly guest: QuickJS-ng behind a small ABI of its own.
 *
 * One runtime and one context per instance. The host passes UTF-8 strings in through
 * fh_alloc'd buffers and reads answers from the result buffer (fh_result_ptr/len).
 *
 * Imports (module "env"):
 *   host_call(ptr, len) -> length of the answer, or -1: the script's __fh("op\narg")
 *   host_answer(dst)      copies that answer into dst (length bytes)
 *   host_interrupt() -> nonzero to stop the script (the run's deadline or a limit)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quickjs.h"

#define IMPORT(name) __attribute__((import_module("env"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

IMPORT("host_call") int32_t host_call(const char *ptr, int32_t len);
IMPORT("host_answer") void host_answer(char *dst);
IMPORT("host_interrupt") int32_t host_interrupt(void);

enum { FH_OK = 0, FH_JS_ERROR = 1, FH_INTERRUPTED = 2, FH_NO_MEMORY = 3, FH_BAD = 4 };
enum { FH_COMPILE_ONLY = 1, FH_SCRIPT_NAME = 2 };

static JSRuntime *rt;
static JSContext *ctx;
static char *result;
static size_t result_len;

static void set_result(const char *data, size_t len)
{
    free(result);
    result = malloc(len + 1);
    if (!result) {
        result_len = 0;
        return;
    }
    memcpy(result, data, len);
    result[len] = '\0';
    result_len = len;
}

/* typed answer: one tag byte ('s' string, 'j' JSON, 'u' undefined), then the text */
static int set_tagged(char tag, const char *text, size_t len)
{
    char *buf = malloc(len + 1);
    if (!buf)
        return FH_NO_MEMORY;
    buf[0] = tag;
    memcpy(buf + 1, text, len);
    set_result(buf, len + 1);
    free(buf);
    return result ? FH_OK : FH_NO_MEMORY;
}

/* set by the patched JS_ThrowOutOfMemory */
extern int fh_out_of_memory;

static int interrupt_handler(JSRuntime *r, void *opaque)
{
    (void)r;
    (void)opaque;
    return fh_out_of_memory || host_interrupt() != 0;
}

EXPORT("fh_oom") int32_t fh_oom(void)
{
    return fh_out_of_memory;
}

static JSValue js_host(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv)
{
    size_t len;
    const char *text;
    int32_t answer_len;
    char *buf;
    JSValue value;

    (void)this_val;
    if (argc < 1 || !JS_IsString(argv[0]))
        return JS_ThrowTypeError(c, "__fh takes one string");
    text = JS_ToCStringLen(c, &len, argv[0]);
    if (!text)
        return JS_EXCEPTION;
    answer_len = host_call(text, (int32_t)len);
    JS_FreeCString(c, text);
    if (answer_len < 0) {
        JSValue error = JS_NewError(c);
        JS_DefinePropertyValueStr(c, error, "name", JS_NewString(c, "HostError"),
                                  JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
        JS_DefinePropertyValueStr(c, error, "message",
                                  JS_NewString(c, "Host function failed"),
                                  JS_PROP_WRITABLE | JS_PROP_CONFIGURABLE);
        return JS_Throw(c, error);
    }
    buf = malloc((size_t)answer_len + 1);
    if (!buf)
        return JS_ThrowOutOfMemory(c);
    host_answer(buf);
    value = JS_NewStringLen(c, buf, (size_t)answer_len);
    free(buf);
    return value;
}

EXPORT("fh_init") int32_t fh_init(int32_t stack_bytes)
{
    JSValue global;
    rt = JS_NewRuntime();
    if (!rt)
        return FH_NO_MEMORY;
    JS_SetMaxStackSize(rt, (size_t)stack_bytes);
    JS_SetInterruptHandler(rt, interrupt_handler, NULL);
    ctx = JS_NewContext(rt);
    if (!ctx)
        return FH_NO_MEMORY;
    global = JS_GetGlobalObject(ctx);
    JS_SetPropertyStr(ctx, global, "__fh", JS_NewCFunction(ctx, js_host, "__fh", 1));
    JS_FreeValue(ctx, global);
    return FH_OK;
}

EXPORT("fh_alloc") void *fh_alloc(int32_t size)
{
    return malloc(size > 0 ? (size_t)size : 1);
}

EXPORT("fh_free") void fh_free(void *ptr)
{
    free(ptr);
}

EXPORT("fh_result_ptr") char *fh_result_ptr(void)
{
    return result;
}

EXPORT("fh_result_len") int32_t fh_result_len(void)
{
    return (int32_t)result_len;
}

EXPORT("fh_gc") void fh_gc(void)
{
    JS_RunGC(rt);
}

static void append(char **buf, size_t *len, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    char *grown = realloc(*buf, *len + n + 1);
    if (!grown)
        return;
    *buf = grown;
    memcpy(*buf + *len, text ? text : "", n);
    *len += n;
    (*buf)[(*len)++] = '\0';
}

static const char *string_prop(JSValueConst obj, const char *name, JSValue *holder)
{
    *holder = JS_GetPropertyStr(ctx, obj, name);
    if (JS_IsException(*holder)) {
        JS_FreeValue(ctx, JS_GetException(ctx));
        *holder = JS_UNDEFINED;
        return NULL;
    }
    if (JS_IsUndefined(*holder))
        return NULL;
    return JS_ToCString(ctx, *holder);
}

/* the pending exception as a status, with "name\0message\0stack\0" as the result */
static int exception_status(void)
{
    JSValue exc = JS_GetException(ctx);
    char *buf = NULL;
    size_t len = 0;
    int status;

    if (JS_IsUncatchableError(exc) || fh_out_of_memory) {
        JS_FreeValue(ctx, exc);
        set_result("", 0);
        return fh_out_of_memory ? FH_NO_MEMORY : FH_INTERRUPTED;
    }
    if (JS_IsError(exc)) {
        JSValue v;
        const char *s;
        s = string_prop(exc, "name", &v);
        append(&buf, &len, s);
        JS_FreeCString(ctx, s);
        JS_FreeValue(ctx, v);
        s = string_prop(exc, "message", &v);
        append(&buf, &len, s);
        JS_FreeCString(ctx, s);
        JS_FreeValue(ctx, v);
        s = string_prop(exc, "stack", &v);
        append(&buf, &len, s);
        JS_FreeCString(ctx, s);
        JS_FreeValue(ctx, v);
    } else {
        const char *s = JS_ToCString(ctx, exc);
        if (!s)
            JS_FreeValue(ctx, JS_GetException(ctx));
        append(&buf, &len, "");
        append(&buf, &len, s ? s : "null");
        append(&buf, &len, "");
        JS_FreeCString(ctx, s);
    }
    JS_FreeValue(ctx, exc);
    if (buf == NULL || len == 0) {
        free(buf);
        set_result("", 0);
        return FH_NO_MEMORY;
    }
    set_result(buf, len);
    free(buf);
    status = result ? FH_JS_ERROR : FH_NO_MEMORY;
    return status;
}

/* Evaluate (or, with FH_COMPILE_ONLY, only compile) the NUL-terminated UTF-8 source at
 * src (len bytes) as a global script named "<input>" (FH_SCRIPT_NAME) or "<firehook>". */
EXPORT("fh_eval") int32_t fh_eval(const char *src, int32_t len, int32_t flags)
{
    int eval_flags = JS_EVAL_TYPE_GLOBAL;
    const char *name = (flags & FH_SCRIPT_NAME) ? "<input>" : "<firehook>";
    JSValue value;
    int status;

    if (!ctx || len < 0 || src[len] != '\0')
        return FH_BAD;
    if (flags & FH_COMPILE_ONLY)
        eval_flags |= JS_EVAL_FLAG_COMPILE_ONLY;
    value = JS_Eval(ctx, src, (size_t)len, name, eval_flags);
    if (JS_IsException(value))
        return exception_status();
    if (flags & FH_COMPILE_ONLY) {
        JS_FreeValue(ctx, value);
        set_result("", 0);
        return FH_OK;
    }
    if (JS_IsString(value)) {
        size_t n;
        const char *s = JS_ToCStringLen(ctx, &n, value);
        JS_FreeValue(ctx, value);
        if (!s)
            return exception_status();
        status = set_tagged('s', s, n);
        JS_FreeCString(ctx, s);
        return status;
    }
    if (JS_IsUndefined(value)) {
        JS_FreeValue(ctx, value);
        return set_tagged('u', "", 0);
    }
    {
        JSValue json = JS_JSONStringify(ctx, value, JS_UNDEFINED, JS_UNDEFINED);
        JS_FreeValue(ctx, value);
        if (JS_IsException(json))
            return exception_status();
        if (JS_IsUndefined(json))
            return set_tagged('u', "", 0);
        {
            size_t n;
            const char *s = JS_ToCStringLen(ctx, &n, json);
            JS_FreeValue(ctx, json);
            if (!s)
                return exception_status();
            status = set_tagged('j', s, n);
            JS_FreeCString(ctx, s);
            return status;
        }
    }
}

/* Run up to max pending jobs; the number run, or -FH_INTERRUPTED / -FH_NO_MEMORY when a
 * job was stopped by the interrupt poll or ran out of memory. Other exceptions of a job
 * are dropped (as unhandled rejections are). */
EXPORT("fh_run_jobs") int32_t fh_run_jobs(int32_t max)
{
    int32_t count = 0;
    while (count < max) {
        JSContext *job_ctx;
        int r = JS_ExecutePendingJob(rt, &job_ctx);
        if (r == 0)
            break;
        count++;
        if (r < 0) {
            int status = exception_status();
            if (status == FH_INTERRUPTED || status == FH_NO_MEMORY)
                return -status;
            if (result_len > 0 && strcmp(result, "InternalError") == 0 &&
                strcmp(result + strlen(result) + 1, "out of memory") == 0)
                return -FH_NO_MEMORY;
        }
    }
    return count;
}
