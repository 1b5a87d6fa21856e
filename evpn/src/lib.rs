//! BGP EVPN (RFC 7432, RFC 8365) for vxbgp.
