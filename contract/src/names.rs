//! Enums that go on the wire as one fixed string per value.

/// Declares an enum whose values are written as the given strings: the same string is the
/// serde name and what `as_str`, `parse` and `Display` use, so the two never drift apart.
/// The caller derives what it needs (serde's `Serialize` and `Deserialize` included).
macro_rules! named_values {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|value| value.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

pub(crate) use named_values;

/// For the tests of each such enum: the strings its values are written as, once each was
/// checked to be its `as_str` and to read back as itself.
#[cfg(test)]
pub(crate) fn written_names<T>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<&'static str>
where
    T: Copy + serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    all.iter()
        .map(|&value| {
            let json = serde_json::to_string(&value).unwrap();
            assert_eq!(json, format!("\"{}\"", as_str(value)), "{value:?}");
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
            as_str(value)
        })
        .collect()
}
