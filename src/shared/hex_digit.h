/*
 * One hexadecimal digit's value, for the readers of outside text on both
 * sides: the HTTP server's percent escapes (http/http_request.c) and the
 * frame filters' \x escapes (cli/re_match.c).  Header-only, so that both
 * share it without linking each other.
 */
#ifndef MPROF_SHARED_HEX_DIGIT_H
#define MPROF_SHARED_HEX_DIGIT_H

/* 0..15, or -1 when c is no hexadecimal digit (any int, EOF included). */
static inline int mprof_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif /* MPROF_SHARED_HEX_DIGIT_H */
