#include "textflag.h"

// The SHA extensions keep the state as two registers, ABEF and CDGH (A in
// the highest dword). Each SHA256RNDS2 runs two rounds with the message
// and round-constant sums in the low half of X0 and leaves the new ABEF in
// its destination, whose CDGH input the other register becomes; two of
// them, alternating, run four rounds and restore the roles.
//
// Registers: X1 ABEF, X2 CDGH, X8 and X9 their values on entry, X3-X6 the
// last four message-schedule vectors (four words each), X0 the round
// input, X7 and X11 scratch, X10 the byte-swap mask.

// ROUNDS4 runs four rounds on the schedule words in m, with the round
// constants at koff.
#define ROUNDS4(koff, m) \
	MOVO m, X0; \
	MOVOU koff(AX), X11; \
	PADDD X11, X0; \
	SHA256RNDS2 X0, X1, X2; \
	PSHUFD $0x0E, X0, X0; \
	SHA256RNDS2 X0, X2, X1

// SCHED4 computes the next four schedule words into w16 (which held the
// words 16 back), from the words 16, 12, 8 and 4 back, then runs them:
// W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
#define SCHED4(koff, w16, w12, w8, w4) \
	MOVO w4, X7; \
	PALIGNR $4, w8, X7; \
	SHA256MSG1 w12, w16; \
	PADDD X7, w16; \
	SHA256MSG2 w4, w16; \
	ROUNDS4(koff, w16)

// ROUNDS64 runs a block's 64 rounds on X1 and X2, its first 16 words in
// X3-X6.
#define ROUNDS64 \
	ROUNDS4(0, X3); \
	ROUNDS4(16, X4); \
	ROUNDS4(32, X5); \
	ROUNDS4(48, X6); \
	SCHED4(64, X3, X4, X5, X6); \
	SCHED4(80, X4, X5, X6, X3); \
	SCHED4(96, X5, X6, X3, X4); \
	SCHED4(112, X6, X3, X4, X5); \
	SCHED4(128, X3, X4, X5, X6); \
	SCHED4(144, X4, X5, X6, X3); \
	SCHED4(160, X5, X6, X3, X4); \
	SCHED4(176, X6, X3, X4, X5); \
	SCHED4(192, X3, X4, X5, X6); \
	SCHED4(208, X4, X5, X6, X3); \
	SCHED4(224, X5, X6, X3, X4); \
	SCHED4(240, X6, X3, X4, X5)

// TOWORDS turns the state in X1 (ABEF) and X2 (CDGH) into the digest's
// words in order, A-D in X3 and E-H in X4.
#define TOWORDS \
	PSHUFD $0x1B, X1, X3; \
	PSHUFD $0xB1, X2, X4; \
	MOVO X3, X7; \
	PBLENDW $0xF0, X4, X3; \
	PALIGNR $8, X7, X4

// FROMWORDS loads the state at ptr (words A-H in order) as ABEF into x1
// and CDGH into x2.
#define FROMWORDS(ptr, x1, x2) \
	MOVOU (ptr), x1; \
	MOVOU 16(ptr), x2; \
	PSHUFD $0xB1, x1, x1; \
	PSHUFD $0x1B, x2, x2; \
	MOVO x1, X7; \
	PALIGNR $8, x2, x1; \
	PBLENDW $0xF0, X7, x2

// func blockSHANI(h *[8]uint32, p *[64]byte)
TEXT ·blockSHANI(SB), NOSPLIT, $0-16
	MOVQ h+0(FP), DI
	MOVQ p+8(FP), SI
	MOVOU flipMask<>(SB), X10
	LEAQ shaK<>(SB), AX
	FROMWORDS(DI, X1, X2)
	MOVO X1, X8
	MOVO X2, X9
	MOVOU (SI), X3
	PSHUFB X10, X3
	MOVOU 16(SI), X4
	PSHUFB X10, X4
	MOVOU 32(SI), X5
	PSHUFB X10, X5
	MOVOU 48(SI), X6
	PSHUFB X10, X6
	ROUNDS64
	PADDD X8, X1
	PADDD X9, X2
	TOWORDS
	MOVOU X3, (DI)
	MOVOU X4, 16(DI)
	RET

// HMACBLOCK hashes the 32-byte message in X3 and X4 (words in order)
// from the key state in s1 (ABEF) and s2 (CDGH): the one block of an HMAC
// half whose message is 32 bytes. The digest's words are left in X3 and
// X4.
#define HMACBLOCK(s1, s2) \
	MOVO s1, X1; \
	MOVO s2, X2; \
	MOVO X10, X5; \
	MOVOU hmacLen<>(SB), X6; \
	ROUNDS64; \
	PADDD s1, X1; \
	PADDD s2, X2; \
	TOWORDS

// func hiLoopSHANI(inner, outer, u, t *[8]uint32, n int)
//
// Runs n PBKDF2 iterations: u = HMAC(u) from the key's inner and outer
// states, t ^= u. All as SHA-256 words.
TEXT ·hiLoopSHANI(SB), NOSPLIT, $0-40
	MOVQ inner+0(FP), DI
	MOVQ outer+8(FP), SI
	MOVQ u+16(FP), DX
	MOVQ t+24(FP), BX
	MOVQ n+32(FP), CX
	LEAQ shaK<>(SB), AX
	FROMWORDS(DI, X12, X13)
	FROMWORDS(SI, X14, X15)
	MOVOU hmacPad<>(SB), X10
	MOVOU (DX), X3
	MOVOU 16(DX), X4
	MOVOU (BX), X8
	MOVOU 16(BX), X9
	TESTQ CX, CX
	JEQ hidone
hiloop:
	HMACBLOCK(X12, X13)
	HMACBLOCK(X14, X15)
	PXOR X3, X8
	PXOR X4, X9
	DECQ CX
	JNE hiloop
hidone:
	MOVOU X3, (DX)
	MOVOU X4, 16(DX)
	MOVOU X8, (BX)
	MOVOU X9, 16(BX)
	RET

// func cpuHasSHANI() bool
TEXT ·cpuHasSHANI(SB), NOSPLIT, $0-1
	MOVB $0, ret+0(FP)
	MOVL $0, AX
	CPUID
	CMPL AX, $7
	JB done
	MOVL $1, AX
	CPUID
	ANDL $(1<<9 | 1<<19), CX  // SSSE3, SSE4.1
	CMPL CX, $(1<<9 | 1<<19)
	JNE done
	MOVL $7, AX
	MOVL $0, CX
	CPUID
	BTL $29, BX               // SHA
	JCC done
	MOVB $1, ret+0(FP)
done:
	RET

// PSHUFB mask: each dword's bytes reversed.
DATA flipMask<>+0(SB)/8, $0x0405060700010203
DATA flipMask<>+8(SB)/8, $0x0c0d0e0f08090a0b
GLOBL flipMask<>(SB), RODATA|NOPTR, $16

// Words 8-15 of an HMAC-SHA-256 half's one block over a 32-byte message
// (after the 64-byte key block): the 0x80 byte, zeros, the 768-bit length.
DATA hmacPad<>+0(SB)/8, $0x0000000080000000
DATA hmacPad<>+8(SB)/8, $0
GLOBL hmacPad<>(SB), RODATA|NOPTR, $16
DATA hmacLen<>+0(SB)/8, $0
DATA hmacLen<>+8(SB)/8, $0x0000030000000000
GLOBL hmacLen<>(SB), RODATA|NOPTR, $16

// SHA-256's round constants.
DATA shaK<>+0(SB)/8, $0x71374491428a2f98
DATA shaK<>+8(SB)/8, $0xe9b5dba5b5c0fbcf
DATA shaK<>+16(SB)/8, $0x59f111f13956c25b
DATA shaK<>+24(SB)/8, $0xab1c5ed5923f82a4
DATA shaK<>+32(SB)/8, $0x12835b01d807aa98
DATA shaK<>+40(SB)/8, $0x550c7dc3243185be
DATA shaK<>+48(SB)/8, $0x80deb1fe72be5d74
DATA shaK<>+56(SB)/8, $0xc19bf1749bdc06a7
DATA shaK<>+64(SB)/8, $0xefbe4786e49b69c1
DATA shaK<>+72(SB)/8, $0x240ca1cc0fc19dc6
DATA shaK<>+80(SB)/8, $0x4a7484aa2de92c6f
DATA shaK<>+88(SB)/8, $0x76f988da5cb0a9dc
DATA shaK<>+96(SB)/8, $0xa831c66d983e5152
DATA shaK<>+104(SB)/8, $0xbf597fc7b00327c8
DATA shaK<>+112(SB)/8, $0xd5a79147c6e00bf3
DATA shaK<>+120(SB)/8, $0x1429296706ca6351
DATA shaK<>+128(SB)/8, $0x2e1b213827b70a85
DATA shaK<>+136(SB)/8, $0x53380d134d2c6dfc
DATA shaK<>+144(SB)/8, $0x766a0abb650a7354
DATA shaK<>+152(SB)/8, $0x92722c8581c2c92e
DATA shaK<>+160(SB)/8, $0xa81a664ba2bfe8a1
DATA shaK<>+168(SB)/8, $0xc76c51a3c24b8b70
DATA shaK<>+176(SB)/8, $0xd6990624d192e819
DATA shaK<>+184(SB)/8, $0x106aa070f40e3585
DATA shaK<>+192(SB)/8, $0x1e376c0819a4c116
DATA shaK<>+200(SB)/8, $0x34b0bcb52748774c
DATA shaK<>+208(SB)/8, $0x4ed8aa4a391c0cb3
DATA shaK<>+216(SB)/8, $0x682e6ff35b9cca4f
DATA shaK<>+224(SB)/8, $0x78a5636f748f82ee
DATA shaK<>+232(SB)/8, $0x8cc7020884c87814
DATA shaK<>+240(SB)/8, $0xa4506ceb90befffa
DATA shaK<>+248(SB)/8, $0xc67178f2bef9a3f7
GLOBL shaK<>(SB), RODATA|NOPTR, $256
