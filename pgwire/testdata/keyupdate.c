/* A PostgreSQL client over OpenSSL that sends TLS 1.3 KeyUpdates, which
 * crypto/tls cannot: it logs in with the cleartext password over TLS
 * (the gateway asks for it with AllowCleartext), then runs queries
 * between key updates, with and without update_requested, and one whose
 * result takes several records. Used by TestTLSKeyUpdateFromOpenSSL.
 *
 * usage: keyupdate PORT USER PASSWORD DATABASE CIPHERSUITE
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static SSL *ssl;

static void die(const char *what) {
	fprintf(stderr, "keyupdate: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void wr(const void *b, int n) {
	if (SSL_write(ssl, b, n) != n)
		die("write");
}

static void rd(void *b, int n) {
	int got = 0;
	while (got < n) {
		int k = SSL_read(ssl, (char *)b + got, n - got);
		if (k <= 0)
			die("read");
		got += k;
	}
}

/* msg reads one message: its type, and its body (NUL-terminated). */
static int msg(unsigned char **body, uint32_t *len) {
	unsigned char h[5];
	uint32_t n;
	rd(h, 5);
	memcpy(&n, h + 1, 4);
	*len = ntohl(n) - 4;
	*body = malloc(*len + 1);
	rd(*body, *len);
	(*body)[*len] = 0;
	return h[0];
}

static void send_msg(char type, const void *body, uint32_t len) {
	unsigned char *b = malloc(len + 5);
	uint32_t n = htonl(len + 4);
	b[0] = type;
	memcpy(b + 1, &n, 4);
	memcpy(b + 5, body, len);
	wr(b, len + 5);
	free(b);
}

/* query runs sql and checks that the first column of its one row is want
 * (or, with want_len > 0, that it is want_len bytes long). */
static void query(const char *sql, const char *want, uint32_t want_len) {
	unsigned char *body;
	uint32_t len;
	int rows = 0;
	send_msg('Q', sql, strlen(sql) + 1);
	for (;;) {
		int t = msg(&body, &len);
		if (t == 'E')
			die("query failed");
		if (t == 'D') {
			uint32_t n;
			memcpy(&n, body + 2, 4);
			n = ntohl(n);
			if (want_len > 0 ? n != want_len : (n != strlen(want) || memcmp(body + 6, want, n) != 0))
				die("wrong answer");
			rows++;
		}
		free(body);
		if (t == 'Z')
			break;
	}
	if (rows != 1)
		die("not one row");
}

int main(int argc, char **argv) {
	if (argc != 6)
		die("usage: keyupdate PORT USER PASSWORD DATABASE CIPHERSUITE");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		die("connect");
	uint32_t sslreq[2] = {htonl(8), htonl(80877103)};
	char answer;
	if (write(fd, sslreq, 8) != 8 || read(fd, &answer, 1) != 1 || answer != 'S')
		die("SSLRequest refused");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (!SSL_CTX_set_ciphersuites(ctx, argv[5]))
		die("ciphersuite");
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		die("handshake");

	char startup[512];
	int n = 8;
	n += snprintf(startup + n, sizeof startup - n, "user%c%s%cdatabase%c%s%c", 0, argv[2], 0, 0, argv[4], 0);
	startup[n++] = 0;
	uint32_t hdr[2] = {htonl(n), htonl(196608)};
	memcpy(startup, hdr, 8);
	wr(startup, n);
	for (;;) {
		unsigned char *body;
		uint32_t len;
		int t = msg(&body, &len);
		if (t == 'E')
			die("login refused");
		if (t == 'R') {
			uint32_t code;
			memcpy(&code, body, 4);
			code = ntohl(code);
			if (code == 3)
				send_msg('p', argv[3], strlen(argv[3]) + 1);
			else if (code != 0)
				die("not asked for a cleartext password");
		}
		free(body);
		if (t == 'Z')
			break;
	}

	query("SELECT 41 + 1", "42", 0);
	for (int i = 0; i < 4; i++) {
		/* Sent with the next write; a requested one has the gateway
		 * answer with its own, which OpenSSL reads with the result. */
		if (SSL_key_update(ssl, i % 2 == 0 ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1)
			die("SSL_key_update");
		char sql[64], want[16];
		snprintf(sql, sizeof sql, "SELECT %d * 2", i + 100);
		snprintf(want, sizeof want, "%d", 2 * (i + 100));
		query(sql, want, 0);
	}
	query("SELECT repeat('x', 100000)", "", 100000);
	send_msg('X', "", 0);
	printf("ok %s\n", SSL_get_cipher_name(ssl));
	SSL_shutdown(ssl);
	return 0;
}
