//! Any text as an emitted object through `corral_core::datamodel::parse_object_lazy`
//! (which keeps a canonical `_rawData` as text) and `parse_object` (which parses it
//! whole): the same verdict and reason, and, when accepted, the same canonical bytes and
//! hash. And any text `canonical::is_canonical` vouches for writes back byte for byte.

#![no_main]

use corral_core::canonical::{encode, encode_with_raw_data, is_canonical};
use corral_core::datamodel::{parse_object, parse_object_lazy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if is_canonical(text) {
        let value: serde_json::Value = serde_json::from_str(text).expect("canonical is JSON");
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
    }
    match (parse_object(text), parse_object_lazy(text)) {
        (Ok((whole, _)), Ok((lazy, raw, _))) => {
            assert_eq!(encode(&whole), encode_with_raw_data(&lazy, raw));
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("verdicts differ: {:?} / {:?}", a.is_ok(), b.is_ok()),
    }
});
