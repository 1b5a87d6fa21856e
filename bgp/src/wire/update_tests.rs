//! UPDATE decoding and encoding, one test per RFC 7606 rule (named after the clause).

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use std::net::Ipv4Addr;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::wire::attr::as_path::tests::arb_as_path;
use crate::wire::attr::{
    code, flags, AsPath, ExtCommunity, MpNextHop, Origin, PmsiTunnel, RawAttr,
};
use crate::wire::{Action, AttrError, EncodeCtx, Message, WireErrorKind};

const EBGP: DecodeCtx = DecodeCtx {
    as4: true,
    ibgp: false,
};
const IBGP: DecodeCtx = DecodeCtx {
    as4: true,
    ibgp: true,
};

fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, code];
    if flags & 0x10 != 0 {
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        v.push(value.len() as u8);
    }
    v.extend_from_slice(value);
    v
}

fn body(withdrawn: &[u8], attrs: &[Vec<u8>], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    b
}

/// MP_REACH for L2VPN EVPN, next hop 198.19.0.1, one opaque NLRI.
fn mp_reach() -> Vec<u8> {
    attr(
        0x90,
        14,
        &[0, 25, 70, 4, 198, 19, 0, 1, 0, 3, 2, 0xaa, 0xbb],
    )
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}

fn as_path() -> Vec<u8> {
    attr(0x40, 2, &[2, 1, 0, 0, 0xfd, 0xe9])
}

fn local_pref() -> Vec<u8> {
    attr(0x40, 5, &[0, 0, 0, 100])
}

/// A good iBGP EVPN update with `extra` attributes added after the mandatory ones.
fn evpn_update(extra: &[Vec<u8>]) -> Vec<u8> {
    let mut attrs = vec![mp_reach(), origin(), as_path(), local_pref()];
    attrs.extend_from_slice(extra);
    body(&[], &attrs, &[])
}

fn one_error(d: &Decoded<UpdateMsg>) -> &AttrError {
    assert_eq!(d.errors.len(), 1, "errors: {:?}", d.errors);
    &d.errors[0]
}

#[test]
fn good_evpn_update() {
    let d = UpdateMsg::decode(&evpn_update(&[]), &IBGP).unwrap();
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(d.verdict(), None);
    let u = &d.value;
    assert_eq!(u.attrs.origin, Some(Origin::Igp));
    assert_eq!(u.attrs.as_path, Some(AsPath::from_sequence(vec![65001])));
    assert_eq!(u.attrs.local_pref, Some(100));
    let m = u.mp_reach.as_ref().unwrap();
    assert_eq!(m.next_hop, MpNextHop::V4(Ipv4Addr::new(198, 19, 0, 1)));
    assert_eq!(&m.nlri[..], &[3, 2, 0xaa, 0xbb]);
    // Re-encodes byte-exact (MP_REACH first, then code order).
    let mut out = BytesMut::new();
    u.encode(&EncodeCtx { as4: true }, &mut out);
    assert_eq!(&out[..], &evpn_update(&[])[..]);
    assert_eq!(out.len(), u.encoded_len(&EncodeCtx { as4: true }));
}

#[test]
fn rfc7606_7_1_origin_bad_value_treat_as_withdraw() {
    let b = body(
        &[],
        &[mp_reach(), attr(0x40, 1, &[3]), as_path(), local_pref()],
        &[],
    );
    let d = UpdateMsg::decode(&b, &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(e.code, code::ORIGIN);
    assert_eq!(e.action, Action::TreatAsWithdraw);
    assert_eq!(e.offset, mp_reach().len());
    assert_eq!(d.verdict(), Some(Action::TreatAsWithdraw));
}

#[test]
fn rfc7606_7_1_origin_bad_length_treat_as_withdraw() {
    let b = body(
        &[],
        &[mp_reach(), attr(0x40, 1, &[0, 0]), as_path(), local_pref()],
        &[],
    );
    let d = UpdateMsg::decode(&b, &IBGP).unwrap();
    assert_eq!(one_error(&d).action, Action::TreatAsWithdraw);
    // The loop stayed in sync: AS_PATH after it was read.
    assert!(d.value.attrs.as_path.is_some());
}

#[test]
fn rfc7606_7_2_as_path_malformed_treat_as_withdraw() {
    let b = body(
        &[],
        &[
            mp_reach(),
            origin(),
            attr(0x40, 2, &[2, 2, 0, 0, 0, 1]),
            local_pref(),
        ],
        &[],
    );
    let d = UpdateMsg::decode(&b, &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!((e.code, e.action), (code::AS_PATH, Action::TreatAsWithdraw));
}

#[test]
fn rfc7606_7_2_confed_segment_from_ebgp_treat_as_withdraw() {
    let p = attr(0x40, 2, &[3, 1, 0, 0, 0, 1]);
    let b = body(&[], &[mp_reach(), origin(), p.clone()], &[]);
    let d = UpdateMsg::decode(&b, &EBGP).unwrap();
    assert_eq!(one_error(&d).action, Action::TreatAsWithdraw);
    let b = body(&[], &[mp_reach(), origin(), p, local_pref()], &[]);
    assert!(UpdateMsg::decode(&b, &IBGP).unwrap().errors.is_empty());
}

#[test]
fn rfc7606_7_3_next_hop_bad_length_treat_as_withdraw() {
    let b = body(
        &[],
        &[origin(), as_path(), attr(0x40, 3, &[1, 2, 3])],
        &[24, 198, 18, 0],
    );
    let d = UpdateMsg::decode(&b, &EBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::NEXT_HOP, Action::TreatAsWithdraw)
    );
}

#[test]
fn rfc7606_7_4_med_bad_length_treat_as_withdraw() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0x80, 4, &[0, 1])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::MULTI_EXIT_DISC, Action::TreatAsWithdraw)
    );
}

#[test]
fn rfc7606_7_5_local_pref_from_ebgp_discarded() {
    let b = body(&[], &[mp_reach(), origin(), as_path(), local_pref()], &[]);
    let d = UpdateMsg::decode(&b, &EBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::LOCAL_PREF, Action::AttributeDiscard)
    );
    assert_eq!(d.value.attrs.local_pref, None);
}

#[test]
fn rfc7606_7_5_local_pref_bad_length_from_ibgp_treat_as_withdraw() {
    let b = body(
        &[],
        &[mp_reach(), origin(), as_path(), attr(0x40, 5, &[0, 100])],
        &[],
    );
    let d = UpdateMsg::decode(&b, &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::LOCAL_PREF, Action::TreatAsWithdraw)
    );
}

#[test]
fn rfc7606_7_6_atomic_aggregate_bad_length_discarded() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0x40, 6, &[1])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::ATOMIC_AGGREGATE, Action::AttributeDiscard)
    );
    assert!(!d.value.attrs.atomic_aggregate);
}

#[test]
fn rfc7606_7_7_aggregator_bad_length_discarded() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 7, &[0, 1, 2, 3, 4])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::AGGREGATOR, Action::AttributeDiscard)
    );
    assert!(d.value.attrs.other.is_empty());
}

#[test]
fn rfc7606_7_8_communities_bad_length_treat_as_withdraw() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 8, &[0, 1, 2])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::COMMUNITIES, Action::TreatAsWithdraw)
    );
}

#[test]
fn rfc7606_7_9_originator_id_bad_length_treat_as_withdraw() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0x80, 9, &[1, 2, 3, 4, 5])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::ORIGINATOR_ID, Action::TreatAsWithdraw)
    );
    assert_eq!(
        e.kind,
        WireErrorKind::BadLength {
            what: "originator_id",
            got: 5
        }
    );
}

#[test]
fn rfc7606_7_10_cluster_list_bad_length_treat_as_withdraw() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0x80, 10, &[1, 2, 3, 4, 5, 6])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::CLUSTER_LIST, Action::TreatAsWithdraw)
    );
}

#[test]
fn rfc7606_7_11_mp_reach_bad_next_hop_length_session_reset() {
    let bad = attr(0x90, 14, &[0, 25, 70, 5, 1, 2, 3, 4, 5, 0]);
    let b = body(&[], &[bad.clone(), origin(), as_path(), local_pref()], &[]);
    let n = UpdateMsg::decode(&b, &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 9));
    assert_eq!(&n.data[..], &bad[..]);
}

#[test]
fn rfc7606_7_11_mp_reach_truncated_session_reset() {
    let bad = attr(0x90, 14, &[0, 25, 70, 4, 1, 2]);
    let b = body(&[], &[bad, origin(), as_path(), local_pref()], &[]);
    let n = UpdateMsg::decode(&b, &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 9));
}

#[test]
fn rfc7606_7_12_mp_unreach_truncated_session_reset() {
    let b = body(&[], &[attr(0x90, 15, &[0, 25])], &[]);
    let n = UpdateMsg::decode(&b, &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 9));
}

#[test]
fn rfc7606_7_14_ext_communities_not_multiple_of_8_treat_as_withdraw() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 16, &[0; 12])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::EXTENDED_COMMUNITIES, Action::TreatAsWithdraw)
    );
}

#[test]
fn rfc6514_5_pmsi_tunnel_too_short_treat_as_withdraw() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 22, &[0, 6, 0])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::PMSI_TUNNEL, Action::TreatAsWithdraw)
    );
}

#[test]
fn rfc6514_5_pmsi_ingress_replication_without_an_address_treat_as_withdraw() {
    // Tunnel type 6 with a 2-octet identifier: no endpoint to replicate to.
    let short = [0, 6, 0, 0, 100, 198, 19];
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 22, &short)]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::PMSI_TUNNEL, Action::TreatAsWithdraw)
    );
    assert_eq!(d.verdict(), Some(Action::TreatAsWithdraw));
    // With the VTEP's address it is fine.
    let good = [0, 6, 0, 0, 100, 198, 19, 0, 1];
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 22, &good)]), &IBGP).unwrap();
    assert_eq!(d.verdict(), None);
}

#[test]
fn rfc8092_5_large_community_bad_length_treat_as_withdraw() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 32, &[0; 8])]), &IBGP).unwrap();
    assert_eq!(one_error(&d).action, Action::TreatAsWithdraw);
}

#[test]
fn rfc6793_6_as4_path_malformed_discarded() {
    let ctx = DecodeCtx {
        as4: false,
        ibgp: true,
    };
    let b = body(
        &[],
        &[
            mp_reach(),
            origin(),
            attr(0x40, 2, &[2, 1, 0xfd, 0xe9]),
            local_pref(),
            attr(0xc0, 17, &[2, 1, 0]),
        ],
        &[],
    );
    let d = UpdateMsg::decode(&b, &ctx).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.action),
        (code::AS4_PATH, Action::AttributeDiscard)
    );
    assert_eq!(
        d.value.attrs.as_path,
        Some(AsPath::from_sequence(vec![65001]))
    );
}

#[test]
fn rfc7606_3_c_bad_flags_treat_as_withdraw() {
    // ORIGIN marked optional.
    let b = body(
        &[],
        &[mp_reach(), attr(0xc0, 1, &[0]), as_path(), local_pref()],
        &[],
    );
    let d = UpdateMsg::decode(&b, &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(e.kind, WireErrorKind::BadFlags { flags: 0xc0 });
    assert_eq!(e.action, Action::TreatAsWithdraw);
    // ORIGINATOR_ID marked transitive.
    let d = UpdateMsg::decode(&evpn_update(&[attr(0xc0, 9, &[1, 2, 3, 4])]), &IBGP).unwrap();
    assert_eq!(one_error(&d).action, Action::TreatAsWithdraw);
}

#[test]
fn rfc7606_3_c_bad_flags_aggregator_discarded() {
    let d = UpdateMsg::decode(
        &evpn_update(&[attr(0x80, 7, &[0, 0, 0, 1, 1, 2, 3, 4])]),
        &IBGP,
    )
    .unwrap();
    assert_eq!(one_error(&d).action, Action::AttributeDiscard);
}

#[test]
fn rfc7606_3_c_bad_flags_mp_reach_session_reset() {
    let mut m = mp_reach();
    m[0] = 0xd0;
    let n = UpdateMsg::decode(&body(&[], &[m], &[]), &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 4));
}

#[test]
fn rfc7606_3_d_missing_well_known_treat_as_withdraw() {
    // ORIGIN and AS_PATH are always needed for reachable NLRI.
    let d = UpdateMsg::decode(&body(&[], &[mp_reach(), local_pref()], &[]), &IBGP).unwrap();
    let codes: Vec<u8> = d.errors.iter().map(|e| e.code).collect();
    assert_eq!(codes, vec![code::ORIGIN, code::AS_PATH]);
    assert!(d.errors.iter().all(|e| e.action == Action::TreatAsWithdraw));
    // LOCAL_PREF only from internal peers.
    let d = UpdateMsg::decode(&body(&[], &[mp_reach(), origin(), as_path()], &[]), &IBGP).unwrap();
    assert_eq!(
        one_error(&d).kind,
        WireErrorKind::Missing {
            code: code::LOCAL_PREF
        }
    );
    let d = UpdateMsg::decode(&body(&[], &[mp_reach(), origin(), as_path()], &[]), &EBGP).unwrap();
    assert!(d.errors.is_empty());
    // NEXT_HOP only with IPv4 NLRI.
    let d = UpdateMsg::decode(&body(&[], &[origin(), as_path()], &[8, 10]), &EBGP).unwrap();
    assert_eq!(
        one_error(&d).kind,
        WireErrorKind::Missing {
            code: code::NEXT_HOP
        }
    );
}

#[test]
fn rfc7606_3_e_mp_unreach_only_needs_no_attributes() {
    let b = body(&[], &[attr(0x90, 15, &[0, 25, 70, 3, 2, 0xaa, 0xbb])], &[]);
    let d = UpdateMsg::decode(&b, &IBGP).unwrap();
    assert!(d.errors.is_empty());
    assert_eq!(&d.value.mp_unreach.unwrap().nlri[..], &[3, 2, 0xaa, 0xbb]);
    // IPv4 withdrawals alone need nothing either.
    assert!(UpdateMsg::decode(&body(&[8, 10], &[], &[]), &IBGP)
        .unwrap()
        .errors
        .is_empty());
}

#[test]
fn rfc7606_3_g_duplicate_attribute_discarded() {
    let d = UpdateMsg::decode(&evpn_update(&[attr(0x40, 1, &[2])]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.kind.clone(), e.action),
        (WireErrorKind::Duplicate, Action::AttributeDiscard)
    );
    // The first occurrence wins.
    assert_eq!(d.value.attrs.origin, Some(Origin::Igp));
}

#[test]
fn rfc7606_3_g_duplicate_mp_reach_session_reset() {
    let n = UpdateMsg::decode(&evpn_update(&[mp_reach()]), &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
    let un = attr(0x90, 15, &[0, 25, 70]);
    let n = UpdateMsg::decode(&body(&[], &[un.clone(), un], &[]), &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn rfc7606_3_a_withdrawn_length_overrun_session_reset() {
    let n = UpdateMsg::decode(&[0, 9, 8, 10, 0, 0], &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
    // Total Path Attribute Length overruns the message.
    let n = UpdateMsg::decode(&[0, 0, 0, 9, 0x40, 1, 1, 0], &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn rfc7606_4_attribute_length_overrun_treat_as_withdraw() {
    // MP_REACH first, then an attribute whose length runs past the block.
    let mut attrs = vec![mp_reach(), origin(), as_path(), local_pref()];
    attrs.push(vec![0xc0, 8, 200, 0, 0]);
    let d = UpdateMsg::decode(&body(&[], &attrs, &[]), &IBGP).unwrap();
    let e = one_error(&d);
    assert_eq!(
        (e.code, e.kind.clone(), e.action),
        (8, WireErrorKind::Truncated, Action::TreatAsWithdraw)
    );
    assert!(d.value.mp_reach.is_some());
}

#[test]
fn rfc7606_4_fewer_octets_than_attribute_header_treat_as_withdraw() {
    let mut attrs = vec![mp_reach(), origin(), as_path(), local_pref()];
    attrs.push(vec![0x40, 1]);
    let d = UpdateMsg::decode(&body(&[], &attrs, &[]), &IBGP).unwrap();
    assert_eq!(one_error(&d).action, Action::TreatAsWithdraw);
    // Extended length flag with only 3 octets left.
    let mut attrs = vec![mp_reach(), origin(), as_path(), local_pref()];
    attrs.push(vec![0xd0, 8, 0]);
    let d = UpdateMsg::decode(&body(&[], &attrs, &[]), &IBGP).unwrap();
    assert_eq!(one_error(&d).action, Action::TreatAsWithdraw);
}

#[test]
fn rfc7606_5_2_overrun_before_mp_reach_session_reset() {
    // The NLRI may sit in an MP_REACH hidden in the unreadable rest: reset.
    let attrs = vec![origin(), vec![0x40, 2, 100, 2, 1]];
    let n = UpdateMsg::decode(&body(&[], &attrs, &[]), &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 1));
}

#[test]
fn rfc7606_5_3_invalid_ipv4_nlri_session_reset() {
    let n = UpdateMsg::decode(
        &body(
            &[],
            &[origin(), as_path(), attr(0x40, 3, &[1, 2, 3, 4])],
            &[33, 1, 2, 3, 4, 5],
        ),
        &EBGP,
    )
    .unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 10));
    let n = UpdateMsg::decode(&body(&[24, 10], &[], &[]), &EBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 10));
}

#[test]
fn rfc4271_6_3_unrecognized_well_known_session_reset() {
    let bad = attr(0x40, 99, &[1, 2]);
    let n = UpdateMsg::decode(&evpn_update(std::slice::from_ref(&bad)), &IBGP).unwrap_err();
    assert_eq!((n.code, n.subcode), (3, 2));
    assert_eq!(&n.data[..], &bad[..]);
}

#[test]
fn rfc4271_5_unknown_optional_transitive_kept_with_partial() {
    let d = UpdateMsg::decode(
        &evpn_update(&[attr(0xc0, 99, &[1, 2]), attr(0x80, 98, &[3])]),
        &IBGP,
    )
    .unwrap();
    assert!(d.errors.is_empty());
    assert_eq!(
        d.value.attrs.other,
        vec![RawAttr {
            flags: 0xc0 | flags::PARTIAL,
            code: 99,
            value: vec![1, 2].into()
        }]
    );
    // Re-sent as kept.
    let mut out = BytesMut::new();
    d.value.attrs.encode(&EncodeCtx { as4: true }, &mut out);
    assert!(out.windows(5).any(|w| w == [0xe0, 99, 2, 1, 2]));
}

#[test]
fn rfc6793_4_2_3_as4_path_merged_on_two_octet_session() {
    let ctx = DecodeCtx {
        as4: false,
        ibgp: true,
    };
    let path = attr(0x40, 2, &[2, 2, 0xfd, 0xe9, 0x5b, 0xa0]);
    // RFC 6793 §4.2.2: a NEW speaker's AS4_PATH carries the whole path.
    let as4 = attr(0xc0, 17, &[2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x00]);
    let agg = attr(0xc0, 7, &[0x5b, 0xa0, 1, 2, 3, 4]);
    let as4agg = attr(0xc0, 18, &[0xfa, 0x56, 0xea, 0x00, 1, 2, 3, 4]);
    let b = body(
        &[],
        &[mp_reach(), origin(), path, local_pref(), agg, as4, as4agg],
        &[],
    );
    let d = UpdateMsg::decode(&b, &ctx).unwrap();
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    assert_eq!(
        d.value.attrs.as_path,
        Some(AsPath::from_sequence(vec![65001, 4_200_000_000]))
    );
    assert_eq!(
        d.value.attrs.other[0].aggregator(),
        Some((4_200_000_000, Ipv4Addr::new(1, 2, 3, 4)))
    );
    // Sent again to a 2-octet peer: the same bytes come out.
    let mut out = BytesMut::new();
    d.value.encode(&EncodeCtx { as4: false }, &mut out);
    assert_eq!(&out[..], &b[..]);
    // To a 4-octet peer: no AS4_* attributes.
    let mut out = BytesMut::new();
    d.value.encode(&EncodeCtx { as4: true }, &mut out);
    let d4 = UpdateMsg::decode(&out, &IBGP).unwrap();
    assert_eq!(d4.value, d.value);
}

#[test]
fn rfc6793_3_as4_path_from_new_speaker_discarded() {
    let b = evpn_update(&[attr(0xc0, 17, &[2, 1, 0, 0, 0, 9])]);
    let d = UpdateMsg::decode(&b, &IBGP).unwrap();
    assert!(d.errors.is_empty());
    assert_eq!(
        d.value.attrs.as_path,
        Some(AsPath::from_sequence(vec![65001]))
    );
    assert!(d.value.attrs.other.is_empty());
}

#[test]
fn end_of_rib_markers() {
    let ctx = EncodeCtx { as4: true };
    let eor = UpdateMsg::end_of_rib(25, 70);
    assert_eq!(eor.is_end_of_rib(), Some((25, 70)));
    assert_eq!(end_of_rib(25, 70), eor);
    let mut out = BytesMut::new();
    eor.encode(&ctx, &mut out);
    assert_eq!(&out[..], &[0, 0, 0, 7, 0x90, 15, 0, 3, 0, 25, 70]);
    let d = UpdateMsg::decode(&out, &IBGP).unwrap();
    assert!(d.errors.is_empty());
    assert_eq!(d.value.is_end_of_rib(), Some((25, 70)));
    let v4 = UpdateMsg::end_of_rib(1, 1);
    assert_eq!(v4.encoded_len(&ctx), 4);
    assert_eq!(v4.is_end_of_rib(), Some((1, 1)));
    assert_eq!(
        UpdateMsg::decode(&evpn_update(&[]), &IBGP)
            .unwrap()
            .value
            .is_end_of_rib(),
        None
    );
}

#[test]
fn attributes_written_in_code_order_with_extended_length_when_long() {
    let attrs = PathAttrs {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath::from_sequence((1..100).collect())),
        med: Some(5),
        ext_communities: Some(vec![ExtCommunity([0, 2, 0, 1, 0, 0, 0, 1])]),
        pmsi_tunnel: Some(PmsiTunnel {
            flags: 0,
            tunnel_type: 6,
            label: [0, 0, 100],
            tunnel_id: vec![198, 19, 0, 1].into(),
        }),
        other: vec![
            RawAttr {
                flags: 0xc0,
                code: 8,
                value: vec![0, 1, 0, 2].into(),
            },
            RawAttr::new_aggregator(65001, Ipv4Addr::new(1, 1, 1, 1)),
        ],
        ..PathAttrs::default()
    };
    let ctx = EncodeCtx { as4: true };
    let mut out = BytesMut::new();
    attrs.encode(&ctx, &mut out);
    assert_eq!(out.len(), attrs.encoded_len(&ctx));
    // Walk the block: codes ascending; AS_PATH (396 octets) uses extended length.
    let mut codes = Vec::new();
    let mut i = 0;
    while i < out.len() {
        let (f, c) = (out[i], out[i + 1]);
        let (len, hdr) = if f & 0x10 != 0 {
            (u16::from_be_bytes([out[i + 2], out[i + 3]]) as usize, 4)
        } else {
            (out[i + 2] as usize, 3)
        };
        if c == 2 {
            assert_eq!(f, 0x50);
        } else {
            assert_eq!(f & 0x10, 0);
        }
        codes.push(c);
        i += hdr + len;
    }
    assert_eq!(codes, vec![1, 2, 4, 7, 8, 16, 22]);
    let (back, _, _, errs) = PathAttrs::decode(&out, &IBGP).unwrap();
    assert!(errs.is_empty());
    // Decoded `other` comes back in code order.
    assert_eq!(back.other.len(), 2);
    assert_eq!(back.as_path, attrs.as_path);
}

#[test]
fn message_level_update_round_trip() {
    let frame_body = evpn_update(&[]);
    let mut frame = vec![0xff; 16];
    frame.extend_from_slice(&((19 + frame_body.len()) as u16).to_be_bytes());
    frame.push(2);
    frame.extend_from_slice(&frame_body);
    let d = Message::decode(&frame, &IBGP).unwrap();
    assert_eq!(&d.value.to_bytes(&EncodeCtx { as4: true })[..], &frame[..]);
}

fn arb_attrs() -> impl Strategy<Value = PathAttrs> {
    let other = proptest::collection::btree_map(
        prop_oneof![Just(8u8), Just(32u8), 100u8..=200],
        1usize..4,
        0..4,
    );
    (
        (
            proptest::option::of(prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ]),
            proptest::option::of(arb_as_path()),
            proptest::option::of(any::<[u8; 4]>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
        ),
        (
            proptest::option::of(any::<[u8; 4]>()),
            proptest::option::of(proptest::collection::vec(any::<[u8; 4]>(), 1..5)),
            proptest::option::of(proptest::collection::vec(any::<[u8; 8]>(), 1..40)),
            proptest::option::of((
                any::<u8>(),
                any::<u8>(),
                any::<[u8; 3]>(),
                proptest::collection::vec(any::<u8>(), 0..17),
            )),
            other,
            proptest::option::of((any::<u32>(), any::<[u8; 4]>())),
        ),
    )
        .prop_map(
            |((origin, as_path, nh, med, lp, atomic), (oid, cl, ext, pmsi, other, agg))| {
                let mut other: Vec<RawAttr> = other
                    .into_iter()
                    .map(|(code, n)| {
                        let unit = match code {
                            8 => 4,
                            32 => 12,
                            _ => 3,
                        };
                        RawAttr {
                            flags: if code >= 100 { 0xe0 } else { 0xc0 },
                            code,
                            value: vec![code; unit * n].into(),
                        }
                    })
                    .collect();
                if let Some((asn, ip)) = agg {
                    other.insert(0, RawAttr::new_aggregator(asn, ip.into()));
                }
                PathAttrs {
                    origin,
                    as_path,
                    next_hop: nh.map(Ipv4Addr::from),
                    med,
                    local_pref: lp,
                    atomic_aggregate: atomic,
                    originator_id: oid.map(Ipv4Addr::from),
                    cluster_list: cl.map(|l| l.into_iter().map(Ipv4Addr::from).collect()),
                    ext_communities: ext.map(|l| l.into_iter().map(ExtCommunity).collect()),
                    pmsi_tunnel: pmsi.map(
                        |(flags, tunnel_type, label, id): (u8, u8, [u8; 3], Vec<u8>)| PmsiTunnel {
                            flags,
                            // Ingress replication names an IPv4 or IPv6 endpoint; other
                            // identifiers go with another tunnel type.
                            tunnel_type: if tunnel_type == 6 && !matches!(id.len(), 4 | 16) {
                                7
                            } else {
                                tunnel_type
                            },
                            label,
                            tunnel_id: id.into(),
                        },
                    ),
                    other,
                }
            },
        )
}

proptest! {
    #[test]
    fn path_attrs_round_trip_as4(a in arb_attrs()) {
        let ctx = EncodeCtx { as4: true };
        let mut out = BytesMut::new();
        a.encode(&ctx, &mut out);
        prop_assert_eq!(out.len(), a.encoded_len(&ctx));
        let (back, r, u, errs) = PathAttrs::decode(&out, &IBGP).unwrap();
        prop_assert!(errs.is_empty(), "{:?}", errs);
        prop_assert!(r.is_none() && u.is_none());
        prop_assert_eq!(back, a);
    }

    #[test]
    fn path_attrs_round_trip_two_octet(a in arb_attrs()) {
        let ctx = EncodeCtx { as4: false };
        let mut out = BytesMut::new();
        a.encode(&ctx, &mut out);
        prop_assert_eq!(out.len(), a.encoded_len(&ctx));
        let dctx = DecodeCtx { as4: false, ibgp: true };
        let (back, _, _, errs) = PathAttrs::decode(&out, &dctx).unwrap();
        prop_assert!(errs.is_empty(), "{:?}", errs);
        prop_assert_eq!(back.as_path.as_ref().map(AsPath::len), a.as_path.as_ref().map(AsPath::len));
        prop_assert_eq!(&back.other, &a.other);
        prop_assert_eq!(
            PathAttrs { as_path: None, ..back },
            PathAttrs { as_path: None, ..a }
        );
    }

    #[test]
    fn update_round_trip(a in arb_attrs(), nlri in proptest::collection::vec(any::<u8>(), 0..200), un in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50))) {
        let u = UpdateMsg {
            withdrawn: Bytes::from_static(&[24, 198, 18, 0]),
            attrs: a,
            mp_reach: Some(MpReach { afi: 25, safi: 70, next_hop: MpNextHop::V4(Ipv4Addr::new(198, 19, 0, 1)), nlri: nlri.into() }),
            mp_unreach: un.map(|n| MpUnreach { afi: 25, safi: 70, nlri: n.into() }),
            nlri: Bytes::new(),
        };
        let ctx = EncodeCtx { as4: true };
        let mut out = BytesMut::new();
        u.encode(&ctx, &mut out);
        prop_assert_eq!(out.len(), u.encoded_len(&ctx));
        let d = UpdateMsg::decode(&out, &IBGP).unwrap();
        prop_assert_eq!(d.value, u);
    }

    #[test]
    fn update_decode_never_panics(v in proptest::collection::vec(any::<u8>(), 0..400), as4: bool, ibgp: bool) {
        let ctx = DecodeCtx { as4, ibgp };
        let _ = UpdateMsg::decode(&v, &ctx);
        let _ = PathAttrs::decode(&v, &ctx);
    }

    #[test]
    fn update_decode_of_plausible_attrs_never_panics(
        attrs in proptest::collection::vec((any::<u8>(), prop_oneof![1u8..=18, Just(22u8), Just(32u8), any::<u8>()], proptest::collection::vec(any::<u8>(), 0..20)), 0..8),
        as4: bool, ibgp: bool,
    ) {
        let a: Vec<Vec<u8>> = attrs.iter().map(|(f, c, v)| attr(*f, *c, v)).collect();
        let b = body(&[], &a, &[]);
        let ctx = DecodeCtx { as4, ibgp };
        if let Ok(d) = UpdateMsg::decode(&b, &ctx) {
            let e = EncodeCtx { as4 };
            let mut out = BytesMut::new();
            d.value.encode(&e, &mut out);
            prop_assert_eq!(out.len(), d.value.encoded_len(&e));
        }
    }
}
