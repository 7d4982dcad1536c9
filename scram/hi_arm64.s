#include "textflag.h"

// The Armv8 SHA-256 instructions keep the state as ABCD and EFGH, words in
// lane order. SHA256H updates ABCD from ABCD, EFGH and four message words
// plus their round constants; SHA256H2 updates EFGH and needs ABCD as it
// was before, hence a copy.
//
// Registers: V16-V31 the 64 round constants. One derivation (A): V2 ABCD,
// V3 EFGH, V8 the copy of ABCD, V9 message plus constants, V4-V7 the last
// sixteen schedule words. A second one (B), interleaved with the first:
// V10, V11, V12, V13 and V14, V15, V0, V1 in the same roles. R10 points to
// hmacPad; a hiState's key states, u and t are at s, rout, ru and rt.

// H runs four rounds on ABCD and EFGH with the message plus constants in
// wk, keeping cp the copy of ABCD.
#define H(wk, abcd, efgh, cp) \
	SHA256H wk.S4, efgh, abcd; \
	SHA256H2 wk.S4, cp, efgh; \
	VMOV abcd.B16, cp.B16

// ST adds the constants k to the schedule words mi, runs those four rounds
// and computes the words sixteen steps on (mi1, mi2, mim1: the schedule
// registers after and before mi, in turn).
#define ST(k, wk, abcd, efgh, cp, mi, mi1, mi2, mim1) \
	VADD k.S4, mi.S4, wk.S4; \
	SHA256SU0 mi1.S4, mi.S4; \
	SHA256SU1 mi2.S4, mi1.S4, mim1.S4; \
	H(wk, abcd, efgh, cp)

// The same on A's registers and on B's.
#define ADDA(k, m) VADD k.S4, m.S4, V9.S4
#define ADDB(k, m) VADD k.S4, m.S4, V13.S4
#define HA H(V9, V2, V3, V8)
#define HB H(V13, V10, V11, V12)
#define STA(k, mi, mi1, mi2, mim1) ST(k, V9, V2, V3, V8, mi, mi1, mi2, mim1)
#define STB(k, mi, mi1, mi2, mim1) ST(k, V13, V10, V11, V12, mi, mi1, mi2, mim1)

// ROUNDS64A runs a block's 64 rounds on A, its first 16 words in V4-V7.
#define ROUNDS64A \
	ADDA(V16, V4); SHA256SU0 V5.S4, V4.S4; HA; \
	STA(V17, V5, V6, V7, V4); \
	STA(V18, V6, V7, V4, V5); \
	STA(V19, V7, V4, V5, V6); \
	STA(V20, V4, V5, V6, V7); \
	STA(V21, V5, V6, V7, V4); \
	STA(V22, V6, V7, V4, V5); \
	STA(V23, V7, V4, V5, V6); \
	STA(V24, V4, V5, V6, V7); \
	STA(V25, V5, V6, V7, V4); \
	STA(V26, V6, V7, V4, V5); \
	STA(V27, V7, V4, V5, V6); \
	ADDA(V28, V4); HA; SHA256SU1 V6.S4, V5.S4, V7.S4; \
	ADDA(V29, V5); HA; \
	ADDA(V30, V6); HA; \
	ADDA(V31, V7); HA

// ROUNDS64X2 is ROUNDS64A on A and, with B's first 16 words in V14, V15,
// V0, V1, on B, four rounds of one then four of the other: each chain of
// SHA256H/SHA256H2 runs while the other's waits.
#define ROUNDS64X2 \
	ADDA(V16, V4); SHA256SU0 V5.S4, V4.S4; HA; ADDB(V16, V14); SHA256SU0 V15.S4, V14.S4; HB; \
	STA(V17, V5, V6, V7, V4); STB(V17, V15, V0, V1, V14); \
	STA(V18, V6, V7, V4, V5); STB(V18, V0, V1, V14, V15); \
	STA(V19, V7, V4, V5, V6); STB(V19, V1, V14, V15, V0); \
	STA(V20, V4, V5, V6, V7); STB(V20, V14, V15, V0, V1); \
	STA(V21, V5, V6, V7, V4); STB(V21, V15, V0, V1, V14); \
	STA(V22, V6, V7, V4, V5); STB(V22, V0, V1, V14, V15); \
	STA(V23, V7, V4, V5, V6); STB(V23, V1, V14, V15, V0); \
	STA(V24, V4, V5, V6, V7); STB(V24, V14, V15, V0, V1); \
	STA(V25, V5, V6, V7, V4); STB(V25, V15, V0, V1, V14); \
	STA(V26, V6, V7, V4, V5); STB(V26, V0, V1, V14, V15); \
	STA(V27, V7, V4, V5, V6); STB(V27, V1, V14, V15, V0); \
	ADDA(V28, V4); HA; SHA256SU1 V6.S4, V5.S4, V7.S4; ADDB(V28, V14); HB; SHA256SU1 V0.S4, V15.S4, V1.S4; \
	ADDA(V29, V5); HA; ADDB(V29, V15); HB; \
	ADDA(V30, V6); HA; ADDB(V30, V0); HB; \
	ADDA(V31, V7); HA; ADDB(V31, V1); HB

// STATE points rout, ru and rt to the outer key state, u and t of the
// hiState at s (hi.go: the inner key state at 0, the outer at 32, u at 64
// and t at 96, all as words A-H).
#define STATE(s, rout, ru, rt) \
	ADD $32, s, rout; \
	ADD $64, s, ru; \
	ADD $96, s, rt

// XORT xors u (u1, u2) into the t at (rt), through t1 and t2.
#define XORT(rt, u1, u2, t1, t2) \
	VLD1 (rt), [t1.S4, t2.S4]; \
	VEOR u1.B16, t1.B16, t1.B16; \
	VEOR u2.B16, t2.B16, t2.B16; \
	VST1 [t1.S4, t2.S4], (rt)

#define LOADK \
	MOVD $·sha256K(SB), R2; \
	VLD1.P 64(R2), [V16.S4, V17.S4, V18.S4, V19.S4]; \
	VLD1.P 64(R2), [V20.S4, V21.S4, V22.S4, V23.S4]; \
	VLD1.P 64(R2), [V24.S4, V25.S4, V26.S4, V27.S4]; \
	VLD1 (R2), [V28.S4, V29.S4, V30.S4, V31.S4]

// HPRE loads the key state at (rk) into abcd and efgh (cp: the copy) and
// the padding words into p2 and p3, the message registers after u's; HPOST
// adds the key state again (through k1, k2), leaving the digest, the next
// u, in m0 and m1.
#define HPRE(rk, abcd, efgh, cp, p2, p3) \
	VLD1 (rk), [abcd.S4, efgh.S4]; \
	VMOV abcd.B16, cp.B16; \
	VLD1 (R10), [p2.S4, p3.S4]
#define HPOST(rk, k1, k2, abcd, efgh, m0, m1) \
	VLD1 (rk), [k1.S4, k2.S4]; \
	VADD k1.S4, abcd.S4, m0.S4; \
	VADD k2.S4, efgh.S4, m1.S4

// func blockSHA(h *[8]uint32, p *[64]byte)
TEXT ·blockSHA(SB), NOSPLIT, $0-16
	MOVD h+0(FP), R0
	MOVD p+8(FP), R1
	LOADK
	VLD1 (R0), [V2.S4, V3.S4]
	VMOV V2.B16, V8.B16
	VLD1 (R1), [V4.B16, V5.B16, V6.B16, V7.B16]
	VREV32 V4.B16, V4.B16
	VREV32 V5.B16, V5.B16
	VREV32 V6.B16, V6.B16
	VREV32 V7.B16, V7.B16
	ROUNDS64A
	HPOST(R0, V8, V9, V2, V3, V2, V3)
	VST1 [V2.S4, V3.S4], (R0)
	RET

// HALFA hashes A's 32-byte message in V4, V5 from the key state at (rk):
// the one block of an HMAC half whose message is 32 bytes, leaving the
// digest in V4, V5. HALF2 does it for A (key at ra) and B (message V14,
// V15, key at rb).
#define HALFA(rk) \
	HPRE(rk, V2, V3, V8, V6, V7); \
	ROUNDS64A; \
	HPOST(rk, V8, V9, V2, V3, V4, V5)
#define HALF2(ra, rb) \
	HPRE(ra, V2, V3, V8, V6, V7); \
	HPRE(rb, V10, V11, V12, V0, V1); \
	ROUNDS64X2; \
	HPOST(ra, V8, V9, V2, V3, V4, V5); \
	HPOST(rb, V12, V13, V10, V11, V14, V15)

// func hiLoop1(s *hiState, n int)
TEXT ·hiLoop1(SB), NOSPLIT, $0-16
	MOVD s+0(FP), R0
	MOVD n+8(FP), R9
	LOADK
	MOVD $hmacPad<>(SB), R10
	STATE(R0, R3, R4, R5)
	VLD1 (R4), [V4.S4, V5.S4]
	CBZ R9, done1
loop1:
	HALFA(R0)
	HALFA(R3)
	XORT(R5, V4, V5, V8, V9)
	SUB $1, R9, R9
	CBNZ R9, loop1
done1:
	VST1 [V4.S4, V5.S4], (R4)
	RET

// func hiLoop2(a, b *hiState, n int)
TEXT ·hiLoop2(SB), NOSPLIT, $0-24
	MOVD a+0(FP), R0
	MOVD b+8(FP), R1
	MOVD n+16(FP), R9
	LOADK
	MOVD $hmacPad<>(SB), R10
	STATE(R0, R3, R4, R5)
	STATE(R1, R6, R7, R8)
	VLD1 (R4), [V4.S4, V5.S4]
	VLD1 (R7), [V14.S4, V15.S4]
	CBZ R9, done2
loop2:
	HALF2(R0, R1)
	HALF2(R3, R6)
	XORT(R5, V4, V5, V8, V9)
	XORT(R8, V14, V15, V12, V13)
	SUB $1, R9, R9
	CBNZ R9, loop2
done2:
	VST1 [V4.S4, V5.S4], (R4)
	VST1 [V14.S4, V15.S4], (R7)
	RET

// Words 8-15 of an HMAC-SHA-256 half's one block over a 32-byte message
// (after the 64-byte key block): the 0x80 byte, zeros, the 768-bit length.
DATA hmacPad<>+0(SB)/4, $0x80000000
DATA hmacPad<>+4(SB)/4, $0
DATA hmacPad<>+8(SB)/8, $0
DATA hmacPad<>+16(SB)/8, $0
DATA hmacPad<>+24(SB)/4, $0
DATA hmacPad<>+28(SB)/4, $0x300
GLOBL hmacPad<>(SB), RODATA|NOPTR, $32
