use super::*;
#[test]
fn probe() {
    let cases: &[&str] = &[
        "",
        "# only a comment\n",
        "- a\n- b\n",
        "name: x\nname: y\nports: {}\n",
        "name: x\nports:\n  a: { kind: null, kind: tap }\n",
        "name: 123\nports: {}\n",
        "name: x\nports:\n  10: { kind: null }\n",
        "name: x\nports: [a, b]\n",
        "name: x\nports:\n  a: { kind: null }\nlinks: [a, b]\n",
        "name: x\nports:\n  a: { kind: null }\nlinks:\n  - [a, 1]\n",
        "name: x\nports:\n  a: { kind: 5 }\n",
        "name: x\nports:\n  a: null\n",
        "name: x\nports:\n  a: { kind: tap, mac: 12:34:56:12:34:56 }\n",
        "name: x\nfunctions:\n  s: { kind: switch, ageing: [1] }\n",
        "name: x\nfunctions:\n  s: { kind: switch, ageing: -5 }\n",
        "name: x\nfunctions:\n  s: { kind: switch, attachments: { a: { vlan: 2, color: red } } }\n",
        "name: x\nfunctions:\n  s: { kind: switch, attachments: { a: { trunk: 5 } } }\n",
        "name: x\nfunctions:\n  s: { }\n",
        "name: x\nfunctions:\n  s:\n",
        "name: x\nhosts:\n  h: 5\n",
        "name: x\nports:\n  a: { kind: tap\n",
        "name: x\nports:\n  a: { kind: tap }\n\tb: 1\n",
        "name: x\n---\nname: y\n",
        "name: x\nports:\n  a: &p { kind: null }\n  b: *p\nlinks:\n  - [a, b]\n",
        "name: x\nports:\n  a: { kind: tap, mtu: big }\n",
        "name: x\nports:\n  a:\n    kind: tap\n    mtu:\n      - 5\n",
        "name: x\nports:\n  a: { kind: null }\nlinks:\n  - [a]\n",
        "name: x\nports:\n  a: { kind: null }\n  b: { kind: null }\nlinks:\n  - [a, b]\n",
        "name: x\nlinks:\n  - 5\n",
    ];
    for c in cases {
        println!("=== {c:?}");
        match load_str(c, Path::new("t.yaml")) {
            Ok(t) => println!("OK {t:?}"),
            Err(LoadError::Invalid(es)) => {
                for e in es {
                    println!("  {e}")
                }
            }
            Err(e) => println!("IO {e}"),
        }
    }
}
