//! ROUTE-REFRESH (RFC 2918 §3; the subtype octet of RFC 7313).

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRefreshMsg {
    pub afi: u16,
    /// 0 = normal request (the "reserved" octet of RFC 2918).
    pub subtype: u8,
    pub safi: u8,
}
