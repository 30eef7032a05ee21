//! [`Activation`]: the functions σ of the seed notes, and the scalar definition of σ and σ'
//! that the SIMD kernels are tested against.

use crate::scalar::Scalar;

/// √(2/π), the scale inside the tanh form of GELU.
pub(crate) const GELU_C: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh form of GELU.
pub(crate) const GELU_K: f64 = 0.044_715;
/// Slope of [`Activation::LeakyRelu`] for negative inputs.
pub const LEAKY_RELU_SLOPE: f64 = 0.01;

/// An activation function σ, applied element-wise to a layer's pre-activations n.
///
/// `activate` writes a = σ(n) and d = σ'(n) (the diagonal of A) in one pass. Every
/// element-wise activation maps NaN to NaN in both a and d.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// σ(n) = n, σ' = 1.
    Identity,
    /// σ(n) = 1 / (1 + e⁻ⁿ), σ' = σ(n) · σ(−n) (= a(1 − a), with 1 − a formed without
    /// cancellation).
    Sigmoid,
    /// σ(n) = tanh n, σ' = (1 − a)(1 + a) (= 1 − a², with 1 − |a| formed without
    /// cancellation).
    Tanh,
    /// σ(n) = max(n, 0), σ' = 1 for n > 0 and 0 otherwise.
    Relu,
    /// σ(n) = n for n > 0 and 0.01 n otherwise; σ' = 1 or 0.01.
    LeakyRelu,
    /// σ(n) = ln(1 + eⁿ), σ' = 1 / (1 + e⁻ⁿ); exact in the tails (softplus(1000) = 1000,
    /// softplus(−30) = e⁻³⁰ to full precision).
    Softplus,
    /// GELU in its tanh form (as PyTorch's `gelu(approximate="tanh")`):
    /// σ(n) = n · s with s = 1 / (1 + e^(−2u)), u = √(2/π)(n + 0.044715 n³), which equals
    /// ½ n (1 + tanh u) without its cancellation for negative n;
    /// σ' = s + n · s(1 − s) · 2√(2/π)(1 + 3 · 0.044715 n²).
    Gelu,
    /// Softmax over the whole layer: not element-wise, so only the network's output layer
    /// may use it (the loss supplies δ); the `activate` kernel rejects it.
    Softmax,
}

impl Activation {
    /// Every element-wise activation (all but `Softmax`).
    pub const ELEMENTWISE: [Activation; 7] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Softplus,
        Activation::Gelu,
    ];

    /// The variant's name, e.g. `"Sigmoid"`.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "Identity",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
            Activation::Relu => "Relu",
            Activation::LeakyRelu => "LeakyRelu",
            Activation::Softplus => "Softplus",
            Activation::Gelu => "Gelu",
            Activation::Softmax => "Softmax",
        }
    }

    /// Whether σ acts on each element alone (everything but `Softmax`).
    pub fn is_elementwise(self) -> bool {
        self != Activation::Softmax
    }

    /// σ(n) and σ'(n) for one element, computed plainly with `std`'s functions in `T`'s
    /// precision (the definition the kernels are tested against). `None` for `Softmax`.
    ///
    /// ```
    /// use deltaprop::Activation;
    /// assert_eq!(Activation::Sigmoid.eval(0.0f64), Some((0.5, 0.25)));
    /// assert_eq!(Activation::Relu.eval(-2.0f32), Some((0.0, 0.0)));
    /// assert_eq!(Activation::Softmax.eval(1.0f32), None);
    /// ```
    pub fn eval<T: Scalar>(self, n: T) -> Option<(T, T)> {
        if self == Activation::Softmax {
            return None;
        }
        if n.is_nan() {
            return Some((n, n));
        }
        let zero = T::ZERO;
        let one = T::ONE;
        Some(match self {
            Activation::Identity => (n, one),
            Activation::Sigmoid => {
                let (s, s_neg) = sigmoid_pair(n);
                (s, s * s_neg)
            }
            Activation::Tanh => {
                let a = n.tanh();
                // 1 − |a| = 2e / (1 + e) with e = exp(−2|n|): no cancellation when |a| → 1.
                let e = (-(n.abs() + n.abs())).exp();
                let one_minus_abs = (e + e) / (one + e);
                let one_plus_abs = one + a.abs();
                (a, one_minus_abs * one_plus_abs)
            }
            Activation::Relu => {
                if n > zero {
                    (n, one)
                } else {
                    (zero, zero)
                }
            }
            Activation::LeakyRelu => {
                let slope = T::from_f64(LEAKY_RELU_SLOPE);
                if n > zero {
                    (n, one)
                } else {
                    (slope * n, slope)
                }
            }
            Activation::Softplus => {
                let (s, _) = sigmoid_pair(n);
                (n.max(zero) + (-n.abs()).exp().ln_1p(), s)
            }
            Activation::Gelu => {
                let c = T::from_f64(GELU_C);
                let k = T::from_f64(GELU_K);
                let u2 = (c + c) * (n + k * n * n * n);
                let (s, s_neg) = sigmoid_pair(u2);
                let ss = s * s_neg;
                // ss is exactly 0 whenever n² could overflow, so skip the product then.
                let tail = if ss == zero {
                    zero
                } else {
                    let three = T::from_f64(3.0);
                    n * ss * (c + c) * (one + three * k * n * n)
                };
                (n * s, s + tail)
            }
            Activation::Softmax => unreachable!("handled above"),
        })
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// (σ(x), σ(−x)) with no overflow and no cancellation: with e = exp(−|x|), the two are
/// 1/(1+e) and e/(1+e) in the order x's sign gives.
fn sigmoid_pair<T: Scalar>(x: T) -> (T, T) {
    let e = (-x.abs()).exp();
    let q = T::ONE / (T::ONE + e);
    if x >= T::ZERO { (q, e * q) } else { (e * q, q) }
}
