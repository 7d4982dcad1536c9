#include "textflag.h"

// The Armv8 SHA-256 instructions keep the state as ABCD and EFGH, words in
// lane order. SHA256H updates ABCD from ABCD, EFGH and four message words
// plus their round constants; SHA256H2 updates EFGH and needs ABCD as it
// was before, hence a copy.
//
// Registers: V16-V31 the 64 round constants. One derivation (A): V2 ABCD,
// V3 EFGH, V8 the copy of ABCD, V9 message plus constants, V4-V7 the last
// sixteen schedule words. A second one (B), interleaved with the first:
// V10, V11, V12, V13 and V14, V15, V0, V1 in the same roles.

#define ADDA(k, m) VADD k.S4, m.S4, V9.S4
#define ADDB(k, m) VADD k.S4, m.S4, V13.S4
#define HA SHA256H V9.S4, V3, V2; SHA256H2 V9.S4, V8, V3; VMOV V2.B16, V8.B16
#define HB SHA256H V13.S4, V11, V10; SHA256H2 V13.S4, V12, V11; VMOV V10.B16, V12.B16

// STA runs four rounds of A on schedule words mi with constants k and
// computes the words four and sixteen steps on (mi1, mi2, mim1: the
// schedule registers after and before mi, in turn).
#define STA(k, mi, mi1, mi2, mim1) \
	ADDA(k, mi); \
	SHA256SU0 mi1.S4, mi.S4; \
	SHA256SU1 mi2.S4, mi1.S4, mim1.S4; \
	HA

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

// ST2 is STA for A (a*) and B (b*) at once, instruction by instruction.
#define ST2(k, ai, ai1, ai2, aim1, bi, bi1, bi2, bim1) \
	ADDA(k, ai); \
	ADDB(k, bi); \
	SHA256SU0 ai1.S4, ai.S4; \
	SHA256SU0 bi1.S4, bi.S4; \
	SHA256SU1 ai2.S4, ai1.S4, aim1.S4; \
	SHA256SU1 bi2.S4, bi1.S4, bim1.S4; \
	SHA256H V9.S4, V3, V2; \
	SHA256H V13.S4, V11, V10; \
	SHA256H2 V9.S4, V8, V3; \
	SHA256H2 V13.S4, V12, V11; \
	VMOV V2.B16, V8.B16; \
	VMOV V10.B16, V12.B16

// H2 is HA and HB at once.
#define H2 \
	SHA256H V9.S4, V3, V2; \
	SHA256H V13.S4, V11, V10; \
	SHA256H2 V9.S4, V8, V3; \
	SHA256H2 V13.S4, V12, V11; \
	VMOV V2.B16, V8.B16; \
	VMOV V10.B16, V12.B16

// ROUNDS64X2 is ROUNDS64A on A and, with B's first 16 words in V14, V15,
// V0, V1, on B.
#define ROUNDS64X2 \
	ADDA(V16, V4); ADDB(V16, V14); SHA256SU0 V5.S4, V4.S4; SHA256SU0 V15.S4, V14.S4; H2; \
	ST2(V17, V5, V6, V7, V4, V15, V0, V1, V14); \
	ST2(V18, V6, V7, V4, V5, V0, V1, V14, V15); \
	ST2(V19, V7, V4, V5, V6, V1, V14, V15, V0); \
	ST2(V20, V4, V5, V6, V7, V14, V15, V0, V1); \
	ST2(V21, V5, V6, V7, V4, V15, V0, V1, V14); \
	ST2(V22, V6, V7, V4, V5, V0, V1, V14, V15); \
	ST2(V23, V7, V4, V5, V6, V1, V14, V15, V0); \
	ST2(V24, V4, V5, V6, V7, V14, V15, V0, V1); \
	ST2(V25, V5, V6, V7, V4, V15, V0, V1, V14); \
	ST2(V26, V6, V7, V4, V5, V0, V1, V14, V15); \
	ST2(V27, V7, V4, V5, V6, V1, V14, V15, V0); \
	ADDA(V28, V4); ADDB(V28, V14); H2; SHA256SU1 V6.S4, V5.S4, V7.S4; SHA256SU1 V0.S4, V15.S4, V1.S4; \
	ADDA(V29, V5); ADDB(V29, V15); H2; \
	ADDA(V30, V6); ADDB(V30, V0); H2; \
	ADDA(V31, V7); ADDB(V31, V1); H2

#define LOADK \
	MOVD $·sha256K(SB), R2; \
	VLD1.P 64(R2), [V16.S4, V17.S4, V18.S4, V19.S4]; \
	VLD1.P 64(R2), [V20.S4, V21.S4, V22.S4, V23.S4]; \
	VLD1.P 64(R2), [V24.S4, V25.S4, V26.S4, V27.S4]; \
	VLD1 (R2), [V28.S4, V29.S4, V30.S4, V31.S4]

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
	VLD1 (R0), [V8.S4, V9.S4]
	VADD V8.S4, V2.S4, V2.S4
	VADD V9.S4, V3.S4, V3.S4
	VST1 [V2.S4, V3.S4], (R0)
	RET

// A hiState (hi.go): the key's inner state at 0 and outer state at 32,
// u at 64 and t at 96, all as words A-H.

// HALFA hashes A's 32-byte message in V4, V5 from the key state at (rk),
// the one block of an HMAC half whose message is 32 bytes (R10: its
// padding words), leaving the digest in V4, V5.
#define HALFA(rk) \
	VLD1 (rk), [V2.S4, V3.S4]; \
	VMOV V2.B16, V8.B16; \
	VLD1 (R10), [V6.S4, V7.S4]; \
	ROUNDS64A; \
	VLD1 (rk), [V8.S4, V9.S4]; \
	VADD V8.S4, V2.S4, V4.S4; \
	VADD V9.S4, V3.S4, V5.S4

// HALF2 is HALFA for A (key at ra) and B (message V14, V15, key at rb).
#define HALF2(ra, rb) \
	VLD1 (ra), [V2.S4, V3.S4]; \
	VLD1 (rb), [V10.S4, V11.S4]; \
	VMOV V2.B16, V8.B16; \
	VMOV V10.B16, V12.B16; \
	VLD1 (R10), [V6.S4, V7.S4]; \
	VLD1 (R10), [V0.S4, V1.S4]; \
	ROUNDS64X2; \
	VLD1 (ra), [V8.S4, V9.S4]; \
	VLD1 (rb), [V12.S4, V13.S4]; \
	VADD V8.S4, V2.S4, V4.S4; \
	VADD V9.S4, V3.S4, V5.S4; \
	VADD V12.S4, V10.S4, V14.S4; \
	VADD V13.S4, V11.S4, V15.S4

// func hiLoop1(s *hiState, n int)
TEXT ·hiLoop1(SB), NOSPLIT, $0-16
	MOVD s+0(FP), R0
	MOVD n+8(FP), R9
	LOADK
	MOVD $hmacPad<>(SB), R10
	ADD $32, R0, R3
	ADD $64, R0, R4
	ADD $96, R0, R5
	VLD1 (R4), [V4.S4, V5.S4]
	CBZ R9, done1
loop1:
	HALFA(R0)
	HALFA(R3)
	VLD1 (R5), [V8.S4, V9.S4]
	VEOR V4.B16, V8.B16, V8.B16
	VEOR V5.B16, V9.B16, V9.B16
	VST1 [V8.S4, V9.S4], (R5)
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
	ADD $32, R0, R3
	ADD $64, R0, R4
	ADD $96, R0, R5
	ADD $32, R1, R6
	ADD $64, R1, R7
	ADD $96, R1, R8
	VLD1 (R4), [V4.S4, V5.S4]
	VLD1 (R7), [V14.S4, V15.S4]
	CBZ R9, done2
loop2:
	HALF2(R0, R1)
	HALF2(R3, R6)
	VLD1 (R5), [V8.S4, V9.S4]
	VLD1 (R8), [V12.S4, V13.S4]
	VEOR V4.B16, V8.B16, V8.B16
	VEOR V5.B16, V9.B16, V9.B16
	VEOR V14.B16, V12.B16, V12.B16
	VEOR V15.B16, V13.B16, V13.B16
	VST1 [V8.S4, V9.S4], (R5)
	VST1 [V12.S4, V13.S4], (R8)
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
