//! Incremental aggregation: an accumulator per window and key, updated per
//! record, merged when windows merge (sessions), read when the window fires.
//!
//! Implement [`Aggregate`] for your own, or combine the built-ins with a
//! tuple: `(Count, Sum::of(|e: &Event| e.value))` counts and sums at once.

use std::fmt;
use std::ops::AddAssign;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// An incremental aggregate over values of type `T` (Flink's
/// `AggregateFunction`, Beam's `CombineFn`).
///
/// Contract: `merge` is associative and `create` is its identity, so that a
/// window can be computed from any split of its records; `result` does not
/// consume the accumulator, because a window kept for allowed lateness may
/// fire again. `add` is called once per record, on the window manager's
/// thread — and, for windows pre-aggregated before the shuffle
/// (`WindowedStream::pre_aggregate`, on by default at `parallelism > 1`
/// for tumbling and pane-sliding windows), on the upstream instances'
/// threads too, with `create` and `merge`: keep them cheap, never block in
/// them, and implement `merge` for every aggregate.
pub trait Aggregate<T>: Clone + Send + 'static {
    /// The running state of one window of one key. Serializable so that
    /// checkpoints can snapshot it.
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// What a firing emits.
    type Out: Send + 'static;
    /// A fresh, empty accumulator.
    fn create(&self) -> Self::Acc;
    /// Adds one value.
    fn add(&self, acc: &mut Self::Acc, value: &T);
    /// Folds `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result for the window as it stands.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

/// Counts records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<T> Aggregate<T> for Count {
    type Acc = u64;
    type Out = u64;
    fn create(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, acc: &mut u64, _value: &T) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// Sums a number taken from each record (wrapping is the number type's own
/// behaviour: integers panic on overflow in debug builds).
#[derive(Clone, Copy)]
pub struct Sum<F> {
    field: F,
}

impl<F> Sum<F> {
    /// Sums `field(record)`.
    pub fn of(field: F) -> Self {
        Sum { field }
    }
}

impl<F> fmt::Debug for Sum<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sum")
    }
}

impl<T, N, F> Aggregate<T> for Sum<F>
where
    F: Fn(&T) -> N + Clone + Send + 'static,
    N: Copy + Default + AddAssign + Send + Serialize + DeserializeOwned + 'static,
{
    type Acc = N;
    type Out = N;
    fn create(&self) -> N {
        N::default()
    }
    #[inline]
    fn add(&self, acc: &mut N, value: &T) {
        *acc += (self.field)(value);
    }
    fn merge(&self, acc: &mut N, other: N) {
        *acc += other;
    }
    fn result(&self, acc: &N) -> N {
        *acc
    }
}

macro_rules! extremum {
    ($name:ident, $doc:literal, $keep_new:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy)]
        pub struct $name<F> {
            field: F,
        }

        impl<F> $name<F> {
            #[doc = concat!("The ", stringify!($name), " of `field(record)`.")]
            pub fn of(field: F) -> Self {
                $name { field }
            }
        }

        impl<F> fmt::Debug for $name<F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl<T, N, F> Aggregate<T> for $name<F>
        where
            F: Fn(&T) -> N + Clone + Send + 'static,
            N: Copy + PartialOrd + Send + Serialize + DeserializeOwned + 'static,
        {
            /// `None` until the first record.
            type Acc = Option<N>;
            type Out = Option<N>;
            fn create(&self) -> Option<N> {
                None
            }
            #[inline]
            fn add(&self, acc: &mut Option<N>, value: &T) {
                let v = (self.field)(value);
                let keep_new: fn(&N, &N) -> bool = $keep_new;
                match acc {
                    Some(cur) if !keep_new(&v, cur) => {}
                    _ => *acc = Some(v),
                }
            }
            fn merge(&self, acc: &mut Option<N>, other: Option<N>) {
                let keep_new: fn(&N, &N) -> bool = $keep_new;
                if let Some(v) = other {
                    match acc {
                        Some(cur) if !keep_new(&v, cur) => {}
                        _ => *acc = Some(v),
                    }
                }
            }
            fn result(&self, acc: &Option<N>) -> Option<N> {
                *acc
            }
        }
    };
}

extremum!(Min, "The smallest of a number taken from each record.", |new, cur| new < cur);
extremum!(Max, "The largest of a number taken from each record.", |new, cur| new > cur);

/// The arithmetic mean of a number taken from each record.
#[derive(Clone, Copy)]
pub struct Average<F> {
    field: F,
}

impl<F> Average<F> {
    /// The mean of `field(record)`.
    pub fn of(field: F) -> Self {
        Average { field }
    }
}

impl<F> fmt::Debug for Average<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Average")
    }
}

impl<T, F> Aggregate<T> for Average<F>
where
    F: Fn(&T) -> f64 + Clone + Send + 'static,
{
    /// (sum, count)
    type Acc = (f64, u64);
    type Out = f64;
    fn create(&self) -> (f64, u64) {
        (0.0, 0)
    }
    #[inline]
    fn add(&self, acc: &mut (f64, u64), value: &T) {
        acc.0 += (self.field)(value);
        acc.1 += 1;
    }
    fn merge(&self, acc: &mut (f64, u64), other: (f64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(f64, u64)) -> f64 {
        if acc.1 == 0 {
            f64::NAN
        } else {
            acc.0 / acc.1 as f64
        }
    }
}

/// Keeps every record of the window, for full-window process functions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Collect;

impl<T> Aggregate<T> for Collect
where
    T: Clone + Send + Serialize + DeserializeOwned + 'static,
{
    type Acc = Vec<T>;
    type Out = Vec<T>;
    fn create(&self) -> Vec<T> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<T>, value: &T) {
        acc.push(value.clone());
    }
    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        acc.extend(other);
    }
    fn result(&self, acc: &Vec<T>) -> Vec<T> {
        acc.clone()
    }
}

macro_rules! tuple_aggregate {
    ($($name:ident $idx:tt),+) => {
        impl<T, $($name: Aggregate<T>),+> Aggregate<T> for ($($name,)+) {
            type Acc = ($($name::Acc,)+);
            type Out = ($($name::Out,)+);
            fn create(&self) -> Self::Acc {
                ($(self.$idx.create(),)+)
            }
            #[inline]
            fn add(&self, acc: &mut Self::Acc, value: &T) {
                $(self.$idx.add(&mut acc.$idx, value);)+
            }
            fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
                $(self.$idx.merge(&mut acc.$idx, other.$idx);)+
            }
            fn result(&self, acc: &Self::Acc) -> Self::Out {
                ($(self.$idx.result(&acc.$idx),)+)
            }
        }
    };
}

tuple_aggregate!(A 0, B 1);
tuple_aggregate!(A 0, B 1, C 2);
tuple_aggregate!(A 0, B 1, C 2, D 3);

#[cfg(test)]
mod tests {
    use super::*;

    fn run<A: Aggregate<i64>>(agg: &A, xs: &[i64]) -> A::Out {
        let mut acc = agg.create();
        for x in xs {
            agg.add(&mut acc, x);
        }
        agg.result(&acc)
    }

    #[test]
    fn builtins_compute_their_statistic() {
        let xs = [5, -2, 9, 4];
        assert_eq!(run(&Count, &xs), 4);
        assert_eq!(run(&Sum::of(|v: &i64| *v), &xs), 16);
        assert_eq!(run(&Min::of(|v: &i64| *v), &xs), Some(-2));
        assert_eq!(run(&Max::of(|v: &i64| *v), &xs), Some(9));
        assert_eq!(run(&Average::of(|v: &i64| *v as f64), &xs), 4.0);
        assert_eq!(run(&Collect, &xs), vec![5, -2, 9, 4]);
        assert_eq!(run(&(Count, Sum::of(|v: &i64| *v)), &xs), (4, 16));
    }

    #[test]
    fn merge_of_split_equals_whole() {
        let agg = (Count, Sum::of(|v: &i64| *v), Min::of(|v: &i64| *v), Max::of(|v: &i64| *v));
        let xs = [3, 1, 4, 1, 5, 9, 2, 6];
        let whole = run(&agg, &xs);
        let mut a = agg.create();
        let mut b = agg.create();
        for x in &xs[..3] {
            agg.add(&mut a, x);
        }
        for x in &xs[3..] {
            agg.add(&mut b, x);
        }
        agg.merge(&mut a, b);
        assert_eq!(agg.result(&a), whole);
        assert_eq!(run(&Min::of(|v: &i64| *v), &[]), None);
    }
}
