"""Classification DMT: the stage runner, its data (CIFAR-10 or digits and the paper's split), steps, evaluation, panels."""
