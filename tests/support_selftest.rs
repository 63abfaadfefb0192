//! The test helpers' own tests, run once here rather than in every test
//! binary that declares the support module.

mod support;

mod clients {
    use crate::support::clients::*;

    #[test]
    fn tree_sort_orders_children() {
        let a = "sw b\n    port 2\n    port 1\nsw a\n    port 3\n";
        assert_eq!(
            sort_tree(a),
            "sw a\n    port 3\nsw b\n    port 1\n    port 2\n"
        );
    }

    #[test]
    fn csv_line_uuid_is_named() {
        let mut n = UuidNames::new();
        let l = "e049e9ce-3906-40bb-ac63-24f42a39095d,\"\"\"a \\\"\"quoted\\\"\", item\"\"\",todo";
        let out = n.sorted_lines(&[l]);
        assert_eq!(
            out,
            vec!["<0>,\"\"\"a \\\"\"quoted\\\"\", item\"\"\",todo".to_string()]
        );
    }

    #[test]
    fn index_messages_are_canonical() {
        let a = "aaaaaaaa-0000-0000-0000-000000000001";
        let b = "bbbbbbbb-0000-0000-0000-000000000002";
        let m1 = format!("[{{\"details\":\"Transaction causes x.  First row, with UUID {a}, was inserted by this transaction.  Second row, with UUID {b}, existed in the database before this transaction and was not modified by the transaction.\",\"error\":\"constraint violation\"}}]");
        let m2 = format!("[{{\"details\":\"Transaction causes x.  First row, with UUID {b}, existed in the database before this transaction and was not modified by the transaction.  Second row, with UUID {a}, was inserted by this transaction.\",\"error\":\"constraint violation\"}}]");
        assert_eq!(canonical_index_message(&m1), canonical_index_message(&m2));
        assert!(canonical_index_message(&m1)
            .ends_with("transaction.\",\"error\":\"constraint violation\"}]"));
        let plain = "no index message";
        assert_eq!(canonical_index_message(plain), plain);
    }

    #[test]
    fn name_lists_are_sorted() {
        assert_eq!(sort_name_lists("ports : [<b>, <a>]"), "ports : [<a>, <b>]");
        assert_eq!(sort_name_lists("x : [\"b\", \"a\"]"), "x : [\"b\", \"a\"]");
    }
}

mod normalize {
    use crate::support::normalize::*;
    use serde_json::json;

    #[test]
    fn versions_are_numbered_and_zero_is_kept() {
        let mut n = Normalizer::new();
        let u = "aaaaaaaa-0000-0000-0000-000000000001";
        let v = "bbbbbbbb-0000-0000-0000-000000000002";
        let fresh = n.normalize(&json!({"_uuid": ["uuid", u], "_version": ["uuid", v]}));
        assert_eq!(
            fresh,
            json!({"_uuid": ["uuid", "<0>"], "_version": ["uuid", "<1>"]})
        );
        let mut n = Normalizer::new();
        let zero = n.normalize(&json!({"_uuid": ["uuid", u], "_version": ["uuid", NIL_UUID]}));
        assert_ne!(fresh, zero, "a zero _version differs from a fresh one");
        let mut n = Normalizer::new();
        let reused = n.normalize(&json!({"_uuid": ["uuid", u], "_version": ["uuid", u]}));
        assert_ne!(fresh, reused, "a reused UUID differs from a fresh one");
    }

    #[test]
    fn numbering_is_by_first_appearance() {
        let mut n = Normalizer::new();
        let a = "aaaaaaaa-0000-0000-0000-000000000001";
        let b = "bbbbbbbb-0000-0000-0000-000000000002";
        let v =
            n.normalize(&json!([{"uuid": ["uuid", b]}, {"details": format!("row {a} and {b}")}]));
        assert_eq!(
            v,
            json!([{"uuid": ["uuid", "<0>"]}, {"details": "row <1> and <0>"}])
        );
    }
}

mod process {
    #[test]
    fn ports_are_parsed() {
        assert_eq!(
            crate::support::process::oxsdb_port("x\noxsdb: listening on ptcp:4567:127.0.0.1\n"),
            Some(4567)
        );
        assert_eq!(
            crate::support::process::oxsdb_port("oxsdb: listening on punix:/tmp/x\n"),
            None
        );
        assert_eq!(
            crate::support::process::reference_ports(
                "2026|00002|socket_util|INFO|0:127.0.0.1: listening on port 45815"
            ),
            vec![45815]
        );
        assert_eq!(
            crate::support::process::reference_ports(
                "x: listening on port 346272026-11-22T01:02:03Z|0|y"
            ),
            vec![34627]
        );
    }
}
