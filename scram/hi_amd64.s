#include "textflag.h"

// The SHA extensions keep the state as two registers, ABEF and CDGH (A in
// the highest dword). Each SHA256RNDS2 runs two rounds with the message
// and round-constant sums in the low half of X0 and leaves the new ABEF in
// its destination, whose CDGH input the other register becomes; two of
// them, alternating, run four rounds and restore the roles.
//
// Registers, one derivation: X1 ABEF, X2 CDGH, X8 and X9 their values on
// entry, X3-X6 the last four message-schedule vectors (four words each),
// X0 the round input, X7 and X11 scratch, X10 the byte-swap mask. Two
// derivations at once (hiLoop2): the first's state in X1 and X2,
// schedule in X3-X6, scratch X7; the second's in X8 and X9, X10-X13, X14;
// X15 the round constants both add.

// KROUNDS4 runs four rounds on state s1 (ABEF) and s2 (CDGH) with the
// schedule words in m plus the round constants in k.
#define KROUNDS4(k, m, s1, s2) \
	MOVO m, X0; \
	PADDD k, X0; \
	SHA256RNDS2 X0, s1, s2; \
	PSHUFD $0x0E, X0, X0; \
	SHA256RNDS2 X0, s2, s1

// ROUNDS4 runs four rounds on X1 and X2 with the schedule words in m and
// the round constants at koff.
#define ROUNDS4(koff, m) \
	MOVOU koff(AX), X11; \
	KROUNDS4(X11, m, X1, X2)

// SCHEDW computes the next four schedule words into w16 (which held the
// words 16 back), from the words 16, 12, 8 and 4 back:
// W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16].
#define SCHEDW(w16, w12, w8, w4, tmp) \
	MOVO w4, tmp; \
	PALIGNR $4, w8, tmp; \
	SHA256MSG1 w12, w16; \
	PADDD tmp, w16; \
	SHA256MSG2 w4, w16

// SCHED4 computes the next four schedule words into w16, then runs them.
#define SCHED4(koff, w16, w12, w8, w4) \
	SCHEDW(w16, w12, w8, w4, X7); \
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

// The two-derivation forms: the same rounds on X1/X2 (schedule X3-X6)
// and on X8/X9 (schedule X10-X13), one after the other, so that each
// SHA256RNDS2 waits on its own state only. One derivation is a chain of
// SHA256RNDS2 each needing the last one's result; two keep the SHA unit
// busy while either chain waits.
#define ROUNDS4X2(koff, ma, mb) \
	MOVOU koff(AX), X15; \
	KROUNDS4(X15, ma, X1, X2); \
	KROUNDS4(X15, mb, X8, X9)

#define SCHED4X2(koff, a16, a12, a8, a4, b16, b12, b8, b4) \
	SCHEDW(a16, a12, a8, a4, X7); \
	SCHEDW(b16, b12, b8, b4, X14); \
	ROUNDS4X2(koff, a16, b16)

#define ROUNDS64X2 \
	ROUNDS4X2(0, X3, X10); \
	ROUNDS4X2(16, X4, X11); \
	ROUNDS4X2(32, X5, X12); \
	ROUNDS4X2(48, X6, X13); \
	SCHED4X2(64, X3, X4, X5, X6, X10, X11, X12, X13); \
	SCHED4X2(80, X4, X5, X6, X3, X11, X12, X13, X10); \
	SCHED4X2(96, X5, X6, X3, X4, X12, X13, X10, X11); \
	SCHED4X2(112, X6, X3, X4, X5, X13, X10, X11, X12); \
	SCHED4X2(128, X3, X4, X5, X6, X10, X11, X12, X13); \
	SCHED4X2(144, X4, X5, X6, X3, X11, X12, X13, X10); \
	SCHED4X2(160, X5, X6, X3, X4, X12, X13, X10, X11); \
	SCHED4X2(176, X6, X3, X4, X5, X13, X10, X11, X12); \
	SCHED4X2(192, X3, X4, X5, X6, X10, X11, X12, X13); \
	SCHED4X2(208, X4, X5, X6, X3, X11, X12, X13, X10); \
	SCHED4X2(224, X5, X6, X3, X4, X12, X13, X10, X11); \
	SCHED4X2(240, X6, X3, X4, X5, X13, X10, X11, X12)

// TOWORDS turns the state in s1 (ABEF) and s2 (CDGH) into the digest's
// words in order, A-D in w1 and E-H in w2.
#define TOWORDS(s1, s2, w1, w2, tmp) \
	PSHUFD $0x1B, s1, w1; \
	PSHUFD $0xB1, s2, w2; \
	MOVO w1, tmp; \
	PBLENDW $0xF0, w2, w1; \
	PALIGNR $8, tmp, w2

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

// func blockSHA(h *[8]uint32, p *[64]byte)
TEXT ·blockSHA(SB), NOSPLIT, $0-16
	MOVQ h+0(FP), DI
	MOVQ p+8(FP), SI
	MOVOU flipMask<>(SB), X10
	LEAQ ·sha256K(SB), AX
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
	TOWORDS(X1, X2, X3, X4, X7)
	MOVOU X3, (DI)
	MOVOU X4, 16(DI)
	RET

// A hiState (hi.go) as the loops read it: the key's inner state at 0 and
// outer state at 32, each as ABEF then CDGH; u at 64 and t at 96, words in
// order.

// HMACBLOCK hashes the 32-byte message in X3 and X4 (words in order) from
// the key state at off(DI): the one block of an HMAC half whose message is
// 32 bytes. The digest's words are left in X3 and X4.
#define HMACBLOCK(off, off16) \
	MOVOU off(DI), X1; \
	MOVOU off16(DI), X2; \
	MOVOU hmacPad<>(SB), X5; \
	MOVOU hmacLen<>(SB), X6; \
	ROUNDS64; \
	MOVOU off(DI), X7; \
	PADDD X7, X1; \
	MOVOU off16(DI), X7; \
	PADDD X7, X2; \
	TOWORDS(X1, X2, X3, X4, X7)

// HMACBLOCKX2 is HMACBLOCK for the state at DI (message X3, X4) and the
// one at SI (message X10, X11) at once.
#define HMACBLOCKX2(off, off16) \
	MOVOU off(DI), X1; \
	MOVOU off16(DI), X2; \
	MOVOU off(SI), X8; \
	MOVOU off16(SI), X9; \
	MOVOU hmacPad<>(SB), X5; \
	MOVOU hmacLen<>(SB), X6; \
	MOVO X5, X12; \
	MOVO X6, X13; \
	ROUNDS64X2; \
	MOVOU off(DI), X7; \
	PADDD X7, X1; \
	MOVOU off16(DI), X7; \
	PADDD X7, X2; \
	MOVOU off(SI), X14; \
	PADDD X14, X8; \
	MOVOU off16(SI), X14; \
	PADDD X14, X9; \
	TOWORDS(X1, X2, X3, X4, X7); \
	TOWORDS(X8, X9, X10, X11, X14)

// XORT xors the message in m1, m2 into the t at 96(ptr).
#define XORT(ptr, m1, m2, tmp) \
	MOVOU 96(ptr), tmp; \
	PXOR m1, tmp; \
	MOVOU tmp, 96(ptr); \
	MOVOU 112(ptr), tmp; \
	PXOR m2, tmp; \
	MOVOU tmp, 112(ptr)

// func hiLoop1(s *hiState, n int)
//
// Runs n PBKDF2 iterations: u = HMAC(u) from the key's inner and outer
// states, t ^= u.
TEXT ·hiLoop1(SB), NOSPLIT, $0-16
	MOVQ s+0(FP), DI
	MOVQ n+8(FP), CX
	LEAQ ·sha256K(SB), AX
	MOVOU 64(DI), X3
	MOVOU 80(DI), X4
	TESTQ CX, CX
	JEQ hidone
hiloop:
	HMACBLOCK(0, 16)
	HMACBLOCK(32, 48)
	XORT(DI, X3, X4, X7)
	DECQ CX
	JNE hiloop
hidone:
	MOVOU X3, 64(DI)
	MOVOU X4, 80(DI)
	RET

// func hiLoop2(a, b *hiState, n int)
//
// hiLoop1 on two states at once, in about the time of one.
TEXT ·hiLoop2(SB), NOSPLIT, $0-24
	MOVQ a+0(FP), DI
	MOVQ b+8(FP), SI
	MOVQ n+16(FP), CX
	LEAQ ·sha256K(SB), AX
	MOVOU 64(DI), X3
	MOVOU 80(DI), X4
	MOVOU 64(SI), X10
	MOVOU 80(SI), X11
	TESTQ CX, CX
	JEQ hi2done
hi2loop:
	HMACBLOCKX2(0, 16)
	HMACBLOCKX2(32, 48)
	XORT(DI, X3, X4, X7)
	XORT(SI, X10, X11, X14)
	DECQ CX
	JNE hi2loop
hi2done:
	MOVOU X3, 64(DI)
	MOVOU X4, 80(DI)
	MOVOU X10, 64(SI)
	MOVOU X11, 80(SI)
	RET

// func cpuHasSHA() bool
TEXT ·cpuHasSHA(SB), NOSPLIT, $0-1
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
