"""Human validation rounds in Label Studio: server lifecycle, labeling config, push / pull / resolve, agreement."""
