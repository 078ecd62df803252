/*
 * A minimal PKCS#11 module for the builds that cannot load SoftHSM's (a glibc-linked C++ library):
 * the dynamically linked musl binary (musllinux wheel, npm's linux-*-musl package) and the
 * Windows .exe. It is compiled here for that libc/OS (musl-gcc, zig cc, mingw) and proves that the
 * binary dlopen()s/LoadLibrary()s a module, finds C_GetFunctionList, calls C_Initialize,
 * C_GetSlotList and C_GetTokenInfo through the function list, and reads the token's label back:
 * the bridge then names it ("tokens present: 'probe-token'") when the URI asks for another token.
 * It holds no keys and signs nothing; a real session with a token key is proven with SoftHSM on the
 * glibc builds (packaging/test/{wheel,npm}.test.mjs).
 *
 * Build: cc -shared -fPIC -o libprobe.so pkcs11-probe.c   (x86_64-w64-mingw32-gcc -shared for .dll)
 */
#include <string.h>

#ifdef _WIN32
/* PKCS#11 on Windows: structures packed to 1 byte, CK_ULONG 32 bits, exported with dllexport. */
#pragma pack(push, 1)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;
typedef struct { unsigned char major, minor; } CK_VERSION;

#define CKR_OK 0x0UL
#define CKR_FUNCTION_NOT_SUPPORTED 0x54UL
#define CKR_BUFFER_TOO_SMALL 0x150UL
#define CKF_TOKEN_INITIALIZED 0x400UL

typedef struct {
  unsigned char label[32], manufacturerID[32], model[16], serialNumber[16];
  CK_ULONG flags, maxSessionCount, sessionCount, maxRwSessionCount, rwSessionCount, maxPinLen,
      minPinLen, totalPublicMemory, freePublicMemory, totalPrivateMemory, freePrivateMemory;
  CK_VERSION hardwareVersion, firmwareVersion;
  unsigned char utcTime[16];
} CK_TOKEN_INFO;

/* Version 2.40's function list: the version, then 68 function pointers in the standard's order. */
typedef CK_RV (*CK_FN)(void);
typedef struct {
  CK_VERSION version;
  CK_FN fn[68];
} CK_FUNCTION_LIST;

static CK_RV not_supported(void) { return CKR_FUNCTION_NOT_SUPPORTED; }
static CK_RV initialize(void *args) { (void)args; return CKR_OK; }
static CK_RV finalize(void *reserved) { (void)reserved; return CKR_OK; }

static CK_RV get_slot_list(unsigned char token_present, CK_ULONG *slots, CK_ULONG *count) {
  (void)token_present;
  if (slots != NULL) {
    if (*count < 1) { *count = 1; return CKR_BUFFER_TOO_SMALL; }
    slots[0] = 1;
  }
  *count = 1;
  return CKR_OK;
}

static void padded(unsigned char *field, size_t size, const char *text) {
  memset(field, ' ', size);
  memcpy(field, text, strlen(text));
}

static CK_RV get_token_info(CK_ULONG slot, CK_TOKEN_INFO *info) {
  (void)slot;
  memset(info, 0, sizeof *info);
  padded(info->label, sizeof info->label, "probe-token");
  padded(info->manufacturerID, sizeof info->manufacturerID, "mcp-secure-remote tests");
  padded(info->model, sizeof info->model, "probe");
  padded(info->serialNumber, sizeof info->serialNumber, "1");
  padded(info->utcTime, sizeof info->utcTime, "");
  info->flags = CKF_TOKEN_INITIALIZED;
  return CKR_OK;
}

static CK_FUNCTION_LIST list;

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out) {
  int i;
  list.version.major = 2;
  list.version.minor = 40;
  for (i = 0; i < 68; i++) list.fn[i] = not_supported;
  list.fn[0] = (CK_FN)initialize;     /* C_Initialize */
  list.fn[1] = (CK_FN)finalize;       /* C_Finalize */
  list.fn[3] = (CK_FN)C_GetFunctionList;
  list.fn[4] = (CK_FN)get_slot_list;  /* C_GetSlotList */
  list.fn[6] = (CK_FN)get_token_info; /* C_GetTokenInfo */
  *out = &list;
  return CKR_OK;
}

#ifdef _WIN32
#pragma pack(pop)
#endif
