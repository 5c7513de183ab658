pub use crate::restore::run;
