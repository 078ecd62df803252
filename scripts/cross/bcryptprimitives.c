/*
 * Test-only stand-in for Windows' bcryptprimitives.dll, for running the Windows build under
 * Debian 12's wine (8.0), which does not ship that DLL. Rust's standard library (1.78 and later)
 * imports ProcessPrng from it for HashMap seeds and other randomness, so without it no Rust .exe
 * starts there. This one forwards to BCryptGenRandom with the system RNG, which wine has.
 *
 * Never shipped: scripts/test-cross.sh builds it with mingw and copies it beside the .exe files
 * it runs under wine (Windows and newer wine load their own system copy instead).
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* BCryptGenRandom takes a ULONG length: fill large requests in pieces. */
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
